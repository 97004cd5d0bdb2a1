//! Violations, penalty points and penalties (违规、积分、处罚).
//!
//! A violation is recorded against a shop by a moderator (or an automatic rule), with its type
//! from the versioned catalogue, points on its track, and evidence. The deduction may reach a
//! penalty node; only the harshest node it reaches applies, as a penalty row with a start and
//! an end. The shop's status is always derived from its penalties in force
//! ([`apply_status`]), so lifting or revoking one penalty leaves exactly the others. Every
//! step writes one audit row and emails the shop in the same transaction.

use chrono::{Duration, NaiveDateTime};
use diesel::dsl::exists;
use diesel::prelude::*;

use super::enforce;
use super::points::{self, Action, Node};
use crate::accounts::{service as accounts, Role, SessionUser};
use crate::db::schema::{
    appeals, orders, penalties as pen, penalty_nodes as pn, products, rule_params, shops,
    violation_delistings as vd, violation_types as vt, violations as vio,
};
use crate::db::{write_tx, DbConn};
use crate::error::{AppError, FieldErrors};
use crate::i18n::{self, Locale};
use crate::pagination::{PageQuery, Paginated};

pub const TRACKS: [&str; 2] = ["general", "serious"];
pub const MAX_EVIDENCE_FILES: usize = 5;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = vt)]
pub struct ViolationType {
    pub id: i64,
    pub code: String,
    pub version: i64,
    pub name_zh: String,
    pub name_en: String,
    pub track: String,
    pub points: i64,
    pub delists_product: bool,
    pub evidence_required: bool,
    pub active: bool,
}

impl ViolationType {
    pub fn name(&self, l: Locale) -> &str {
        match l {
            Locale::En => &self.name_en,
            _ => &self.name_zh,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = vio)]
pub struct Violation {
    pub id: i64,
    pub shop_id: i64,
    pub type_id: i64,
    pub track: String,
    pub points: i64,
    pub year: i64,
    pub points_before: i64,
    pub product_id: Option<i64>,
    pub order_id: Option<i64>,
    pub description: String,
    pub evidence_media_ids: String,
    pub source: String,
    pub recorded_by: Option<i64>,
    pub status: String,
    pub appeal_deadline: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
}

impl Violation {
    pub fn evidence(&self) -> Vec<i64> {
        media_ids(&self.evidence_media_ids)
    }
    /// The merchant may still appeal: no appeal yet and the deadline not passed.
    pub fn appealable(&self, now: &NaiveDateTime) -> bool {
        self.status == "active" && *now <= self.appeal_deadline
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = pen)]
pub struct Penalty {
    pub id: i64,
    pub shop_id: i64,
    pub violation_id: Option<i64>,
    pub kind: String,
    pub node_threshold: Option<i64>,
    pub delist_all: bool,
    pub reason: String,
    pub starts_at: NaiveDateTime,
    pub ends_at: Option<NaiveDateTime>,
    pub status: String,
    pub created_at: NaiveDateTime,
    pub ended_at: Option<NaiveDateTime>,
}

impl Penalty {
    /// In force at `now`.
    pub fn in_force(&self, now: NaiveDateTime) -> bool {
        self.status == "active" && self.ends_at.is_none_or(|e| e > now)
    }
}

pub fn media_ids(s: &str) -> Vec<i64> {
    s.split(',').filter_map(|x| x.parse().ok()).collect()
}

/// A rule parameter (rule_params), or `default` when unset.
pub fn param(c: &mut DbConn, key: &str, default: i64) -> Result<i64, AppError> {
    Ok(rule_params::table
        .find(key)
        .select(rule_params::value)
        .first::<i64>(c)
        .optional()?
        .unwrap_or(default))
}

/// The violation types in force, general track first.
pub fn active_types(c: &mut DbConn) -> Result<Vec<ViolationType>, AppError> {
    Ok(vt::table
        .filter(vt::active.eq(true))
        .order((vt::track, vt::points, vt::code))
        .select(ViolationType::as_select())
        .load(c)?)
}

pub fn type_by_id(c: &mut DbConn, id: i64) -> Result<ViolationType, AppError> {
    vt::table
        .find(id)
        .select(ViolationType::as_select())
        .first(c)
        .optional()?
        .ok_or(AppError::NotFound)
}

/// The penalty nodes in force.
pub fn nodes(c: &mut DbConn) -> Result<Vec<Node>, AppError> {
    let rows: Vec<(String, i64, i64, String, i64, bool)> = pn::table
        .order((pn::track, pn::threshold))
        .select((
            pn::track,
            pn::threshold,
            pn::repeat_every,
            pn::action,
            pn::days,
            pn::delist_all,
        ))
        .load(c)?;
    Ok(rows
        .into_iter()
        .filter_map(
            |(track, threshold, repeat_every, action, days, delist_all)| {
                Some(Node {
                    track,
                    threshold,
                    repeat_every,
                    action: Action::parse(&action)?,
                    days,
                    delist_all,
                })
            },
        )
        .collect())
}

/// The shop's points on `track` in `year` (revoked violations count nothing).
pub fn points_of(c: &mut DbConn, shop_id: i64, track: &str, year: i64) -> Result<i64, AppError> {
    Ok(vio::table
        .filter(vio::shop_id.eq(shop_id))
        .filter(vio::track.eq(track))
        .filter(vio::year.eq(year))
        .filter(vio::status.ne("revoked"))
        .select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "CAST(COALESCE(SUM(points), 0) AS BIGINT)",
        ))
        .first::<i64>(c)?)
}

// ---------- shop status from penalties ----------

/// The status a shop has under the penalties in force, given as (kind, end): clearance over
/// closure (or a suspension by hand) over restriction; the status lasts until the latest end
/// of its kind (none when any of them is open-ended).
pub fn derive_status(
    in_force: &[(String, Option<NaiveDateTime>)],
) -> (&'static str, Option<NaiveDateTime>) {
    let until = |kinds: &[&str]| -> Option<Option<NaiveDateTime>> {
        let ends: Vec<Option<NaiveDateTime>> = in_force
            .iter()
            .filter(|(k, _)| kinds.contains(&k.as_str()))
            .map(|(_, e)| *e)
            .collect();
        if ends.is_empty() {
            None
        } else if ends.iter().any(Option::is_none) {
            Some(None)
        } else {
            Some(ends.into_iter().flatten().max())
        }
    };
    if until(&["clear"]).is_some() {
        ("cleared", None)
    } else if let Some(u) = until(&["close", "suspend"]) {
        ("suspended", u)
    } else if let Some(u) = until(&["restrict"]) {
        ("restricted", u)
    } else {
        ("active", None)
    }
}

/// Sets the shop's status from its penalties in force at `now`; returns the status.
pub fn apply_status(
    c: &mut DbConn,
    shop_id: i64,
    now: NaiveDateTime,
) -> Result<&'static str, AppError> {
    let in_force: Vec<(String, Option<NaiveDateTime>)> = pen::table
        .filter(pen::shop_id.eq(shop_id))
        .filter(pen::status.eq("active"))
        .filter(pen::ends_at.is_null().or(pen::ends_at.gt(now)))
        .select((pen::kind, pen::ends_at))
        .load(c)?;
    let (status, until) = derive_status(&in_force);
    diesel::update(shops::table.find(shop_id))
        .set((
            shops::status.eq(status),
            shops::restricted_until.eq(until),
            shops::updated_at.eq(now),
        ))
        .execute(c)?;
    Ok(status)
}

/// Inserts a penalty in force from `now` and returns its id.
#[allow(clippy::too_many_arguments)]
pub fn insert_penalty(
    c: &mut DbConn,
    shop_id: i64,
    violation_id: Option<i64>,
    kind: &str,
    node: Option<&Node>,
    reason: &str,
    ends_at: Option<NaiveDateTime>,
    actor: Option<i64>,
    now: NaiveDateTime,
) -> Result<i64, AppError> {
    Ok(diesel::insert_into(pen::table)
        .values((
            pen::shop_id.eq(shop_id),
            pen::violation_id.eq(violation_id),
            pen::kind.eq(kind),
            pen::node_threshold.eq(node.map(|n| n.threshold)),
            pen::delist_all.eq(node.is_some_and(|n| n.delist_all)),
            pen::reason.eq(reason),
            pen::starts_at.eq(now),
            pen::ends_at.eq(ends_at),
            pen::status.eq("active"),
            pen::created_by.eq(actor),
            pen::created_at.eq(now),
        ))
        .returning(pen::id)
        .get_result(c)?)
}

/// Delists the shop's products that buyers can see or that wait for review (one, or all when
/// `product` is None) on behalf of a violation, remembering which, so that revoking the
/// violation relists exactly these. Returns how many.
fn delist_for(
    c: &mut DbConn,
    violation_id: i64,
    shop_id: i64,
    product: Option<i64>,
    reason: &str,
    now: NaiveDateTime,
) -> Result<usize, AppError> {
    let mut q = products::table
        .filter(products::shop_id.eq(shop_id))
        .filter(products::status.eq_any(["listed", "pending_review"]))
        .select(products::id)
        .into_boxed();
    if let Some(p) = product {
        q = q.filter(products::id.eq(p));
    }
    let ids: Vec<i64> = q.load(c)?;
    for chunk in ids.chunks(500) {
        diesel::update(products::table.filter(products::id.eq_any(chunk)))
            .set((
                products::status.eq("delisted"),
                products::status_reason.eq(reason),
                products::delisted_by_platform.eq(true),
                products::updated_at.eq(now),
            ))
            .execute(c)?;
        let rows: Vec<_> = chunk
            .iter()
            .map(|p| (vd::violation_id.eq(violation_id), vd::product_id.eq(*p)))
            .collect();
        crate::per_backend!(c, |c| diesel::insert_into(vd::table)
            .values(&rows)
            .execute(c))?;
    }
    Ok(ids.len())
}

/// Relists what a revoked violation delisted: its products still delisted by the platform and
/// not also delisted for another violation in force. Returns how many.
pub(super) fn relist_for(
    c: &mut DbConn,
    violation_id: i64,
    now: NaiveDateTime,
) -> Result<usize, AppError> {
    let other = diesel::alias!(vd as other);
    let ids: Vec<(i64, String, String)> = vd::table
        .inner_join(products::table)
        .filter(vd::violation_id.eq(violation_id))
        .filter(products::status.eq("delisted"))
        .filter(products::delisted_by_platform.eq(true))
        .filter(diesel::dsl::not(exists(
            other
                .inner_join(vio::table.on(vio::id.eq(other.field(vd::violation_id))))
                .filter(other.field(vd::product_id).eq(vd::product_id))
                .filter(other.field(vd::violation_id).ne(violation_id))
                .filter(vio::status.ne("revoked")),
        )))
        .select((products::id, products::title, products::subtitle))
        .load(c)?;
    for (id, title, subtitle) in &ids {
        diesel::update(
            products::table
                .find(id)
                .filter(products::status.eq("delisted")),
        )
        .set((
            products::status.eq("listed"),
            products::status_reason.eq(""),
            products::delisted_by_platform.eq(false),
            products::listed_at.eq(Some(now)),
            products::updated_at.eq(now),
        ))
        .execute(c)?;
        crate::catalog::search::reindex(c, *id, title, subtitle)?;
    }
    Ok(ids.len())
}

// ---------- recording ----------

/// What a moderator records.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(default)]
pub struct RecordForm {
    /// The shop's slug.
    pub shop: String,
    pub type_id: String,
    pub product_id: String,
    pub order_no: String,
    pub description: String,
}

/// What a recorded violation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub violation_id: i64,
    pub points_after: i64,
    /// The penalty it caused: (kind, days).
    pub penalty: Option<(String, i64)>,
    pub delisted: usize,
}

/// A moderator records a violation against a shop, with evidence files.
pub fn record(
    conn: &mut DbConn,
    me: &SessionUser,
    form: &RecordForm,
    files: &[(String, Vec<u8>)],
    tz: chrono_tz::Tz,
    now: NaiveDateTime,
) -> Result<Recorded, AppError> {
    if !me.has_role(Role::Moderator) {
        return Err(AppError::Forbidden("error.403.body"));
    }
    let mut errors = FieldErrors::new();
    let description = form.description.trim();
    if !(10..=2000).contains(&description.chars().count()) {
        errors.add("description", "violation_description");
    }
    if files.len() > MAX_EVIDENCE_FILES {
        errors.add("evidence", "violation_files");
    }
    let slug = form.shop.trim().trim_start_matches('/').to_lowercase();
    let shop_id: Option<i64> = shops::table
        .filter(shops::slug.eq(&slug))
        .select(shops::id)
        .first(conn)
        .optional()?;
    if shop_id.is_none() {
        errors.add("shop", "violation_shop");
    }
    let kind = form
        .type_id
        .trim()
        .parse::<i64>()
        .ok()
        .map(|id| type_by_id(conn, id))
        .transpose()
        .or_else(|e| match e {
            AppError::NotFound => Ok(None),
            e => Err(e),
        })?
        .filter(|t| t.active);
    match &kind {
        None => errors.add("type_id", "violation_type"),
        Some(t) if t.evidence_required && files.is_empty() => {
            errors.add("evidence", "violation_evidence")
        }
        _ => {}
    }
    let mut product_id = None;
    if !form.product_id.trim().is_empty() {
        product_id = form.product_id.trim().parse::<i64>().ok().and_then(|p| {
            products::table
                .find(p)
                .filter(products::shop_id.nullable().eq(shop_id))
                .select(products::id)
                .first::<i64>(conn)
                .optional()
                .ok()
                .flatten()
        });
        if product_id.is_none() {
            errors.add("product_id", "violation_product");
        }
    }
    let mut order_id = None;
    if !form.order_no.trim().is_empty() {
        order_id = orders::table
            .filter(orders::order_no.eq(form.order_no.trim()))
            .filter(orders::shop_id.nullable().eq(shop_id))
            .select(orders::id)
            .first::<i64>(conn)
            .optional()?;
        if order_id.is_none() {
            errors.add("order_no", "violation_order");
        }
    }
    errors.into_result()?;
    let (Some(shop_id), Some(kind)) = (shop_id, kind) else {
        return Err(AppError::NotFound);
    };
    write_tx(conn, |c| {
        let mut ids = Vec::new();
        for (ct, bytes) in files {
            ids.push(accounts::store_private_media(c, me.id, ct, bytes, now)?.to_string());
        }
        let v = NewViolation {
            shop_id,
            kind: &kind,
            product_id,
            order_id,
            description,
            evidence: &ids.join(","),
            source: "moderator",
            actor: Some(me.id),
        };
        record_in(c, &v, tz, now)
    })
}

/// A violation to record (inside the caller's transaction).
pub struct NewViolation<'a> {
    pub shop_id: i64,
    pub kind: &'a ViolationType,
    pub product_id: Option<i64>,
    pub order_id: Option<i64>,
    pub description: &'a str,
    pub evidence: &'a str,
    pub source: &'a str,
    pub actor: Option<i64>,
}

/// Records a violation and everything it causes: points, the product delisted when the type
/// says so, the harshest penalty node reached, the shop's status, one audit row and the email.
pub fn record_in(
    c: &mut DbConn,
    v: &NewViolation<'_>,
    tz: chrono_tz::Tz,
    now: NaiveDateTime,
) -> Result<Recorded, AppError> {
    // Writing the shop row first serializes deductions on one shop: two moderators recording
    // at once each see the other's points.
    let n = diesel::update(shops::table.find(v.shop_id))
        .set(shops::updated_at.eq(now))
        .execute(c)?;
    if n == 0 {
        return Err(AppError::NotFound);
    }
    let year = points::year_of(tz, now);
    let track = v.kind.track.as_str();
    let before = points_of(c, v.shop_id, track, year)?;
    let after = before + v.kind.points;
    let deadline = now + Duration::days(param(c, "appeal_days", 7)?);
    let id: i64 = diesel::insert_into(vio::table)
        .values((
            vio::shop_id.eq(v.shop_id),
            vio::type_id.eq(v.kind.id),
            vio::track.eq(track),
            vio::points.eq(v.kind.points),
            vio::year.eq(year),
            vio::points_before.eq(before),
            vio::product_id.eq(v.product_id),
            vio::order_id.eq(v.order_id),
            vio::description.eq(v.description),
            vio::evidence_media_ids.eq(v.evidence),
            vio::source.eq(v.source),
            vio::recorded_by.eq(v.actor),
            vio::status.eq("active"),
            vio::appeal_deadline.eq(deadline),
            vio::created_at.eq(now),
        ))
        .returning(vio::id)
        .get_result(c)?;
    let reason = format!("{} ({})", v.kind.name_zh, v.kind.name_en);
    let mut delisted = 0;
    if v.kind.delists_product && v.product_id.is_some() {
        delisted += delist_for(c, id, v.shop_id, v.product_id, &reason, now)?;
    }
    let all = nodes(c)?;
    let node = points::applies(&all, track, before, after).cloned();
    let mut penalty = None;
    if let Some(node) = &node {
        let ends = (node.action != Action::Clear).then(|| now + Duration::days(node.days));
        let kind = node.action.as_str();
        insert_penalty(
            c,
            v.shop_id,
            Some(id),
            kind,
            Some(node),
            &reason,
            ends,
            v.actor,
            now,
        )?;
        if node.delist_all || node.action == Action::Clear {
            delisted += delist_for(c, id, v.shop_id, None, &reason, now)?;
        }
        penalty = Some((kind.to_string(), node.days));
    }
    let status = apply_status(c, v.shop_id, now)?;
    accounts::audit_shop(
        c,
        v.actor,
        if v.source == "moderator" {
            "violation.record"
        } else {
            "violation.auto"
        },
        "violation",
        Some(id),
        Some(v.shop_id),
        &format!(
            "{} {}: {} {track} points {before} -> {after}; penalty {}; products delisted {delisted}; shop {status}",
            v.kind.code,
            v.kind.version,
            v.kind.points,
            penalty
                .as_ref()
                .map(|(k, d)| format!("{k} {d}d"))
                .unwrap_or_else(|| "none".into()),
        ),
    )?;
    let deadline = enforce::local_time(tz, deadline);
    notify_violation(c, v.shop_id, v.kind, after, penalty.as_ref(), &deadline)?;
    Ok(Recorded {
        violation_id: id,
        points_after: after,
        penalty,
        delisted,
    })
}

fn penalty_text(l: Locale, penalty: Option<&(String, i64)>) -> String {
    match penalty {
        None => i18n::t(l, "violation.penalty.none").into_owned(),
        Some((k, d)) => i18n::tf(
            l,
            &format!("violation.penalty.{k}"),
            &[("days", &d.to_string())],
        ),
    }
}

fn notify_violation(
    c: &mut DbConn,
    shop_id: i64,
    kind: &ViolationType,
    points_after: i64,
    penalty: Option<&(String, i64)>,
    deadline: &str,
) -> Result<(), AppError> {
    enforce::notify_shop(c, shop_id, "violation", "violation", |l| {
        vec![
            ("type", kind.name(l).to_string()),
            ("points", kind.points.to_string()),
            (
                "track",
                i18n::t(l, &format!("violation.track.{}", kind.track)).into_owned(),
            ),
            ("total", points_after.to_string()),
            ("penalty", penalty_text(l, penalty)),
            ("deadline", deadline.to_string()),
        ]
    })
}

/// A shop status in the merchant's language.
fn status_text(l: Locale, status: &str) -> String {
    i18n::t(l, &format!("shop.status.{status}")).into_owned()
}

// ---------- the job: penalties that ran out ----------

/// Ends the penalties whose time is up (at most `limit`), each in its own transaction with its
/// shop's status and one audit row. Returns how many ended.
pub fn lift_expired(conn: &mut DbConn, now: NaiveDateTime, limit: i64) -> Result<usize, AppError> {
    let due: Vec<(i64, i64, String)> = pen::table
        .filter(pen::status.eq("active"))
        .filter(pen::ends_at.le(now))
        .order(pen::ends_at)
        .limit(limit)
        .select((pen::id, pen::shop_id, pen::kind))
        .load(conn)?;
    let mut ended = 0;
    for (id, shop_id, kind) in due {
        ended += write_tx(conn, |c| -> Result<usize, AppError> {
            let n = diesel::update(pen::table.find(id).filter(pen::status.eq("active")))
                .set((pen::status.eq("ended"), pen::ended_at.eq(Some(now))))
                .execute(c)?;
            if n == 0 {
                return Ok(0);
            }
            let status = apply_status(c, shop_id, now)?;
            accounts::audit_shop(
                c,
                None,
                "shop.penalty_ended",
                "penalty",
                Some(id),
                Some(shop_id),
                &format!("{kind} ended; shop {status}"),
            )?;
            enforce::notify_shop(c, shop_id, "penalty_ended", "penalty_ended", |l| {
                vec![("status", status_text(l, status))]
            })?;
            Ok(1)
        })?;
    }
    Ok(ended)
}

// ---------- suspension by hand ----------

/// A moderator suspends a shop (until reinstated) with a reason.
pub fn suspend(
    conn: &mut DbConn,
    me: &SessionUser,
    shop_id: i64,
    reason: &str,
    now: NaiveDateTime,
) -> Result<(), AppError> {
    if !me.has_role(Role::Moderator) {
        return Err(AppError::Forbidden("error.403.body"));
    }
    let reason = check_reason(reason)?;
    write_tx(conn, |c| {
        let status: String = shops::table
            .find(shop_id)
            .select(shops::status)
            .first(c)
            .optional()?
            .ok_or(AppError::NotFound)?;
        if status == "cleared" {
            return Err(AppError::Conflict("governance.shop_cleared"));
        }
        let open: i64 = pen::table
            .filter(pen::shop_id.eq(shop_id))
            .filter(pen::kind.eq("suspend"))
            .filter(pen::status.eq("active"))
            .count()
            .get_result(c)?;
        if open > 0 {
            return Err(AppError::Conflict("governance.already_suspended"));
        }
        let id = insert_penalty(
            c,
            shop_id,
            None,
            "suspend",
            None,
            reason,
            None,
            Some(me.id),
            now,
        )?;
        let status = apply_status(c, shop_id, now)?;
        accounts::audit_shop(
            c,
            Some(me.id),
            "shop.suspend",
            "penalty",
            Some(id),
            Some(shop_id),
            &format!("{reason}; shop {status}"),
        )?;
        notify_status(c, shop_id, "suspended", reason)
    })
}

/// A moderator lifts a suspension by hand; penalties from violations stay in force.
pub fn reinstate(
    conn: &mut DbConn,
    me: &SessionUser,
    shop_id: i64,
    reason: &str,
    now: NaiveDateTime,
) -> Result<(), AppError> {
    if !me.has_role(Role::Moderator) {
        return Err(AppError::Forbidden("error.403.body"));
    }
    let reason = check_reason(reason)?;
    write_tx(conn, |c| {
        let n = diesel::update(
            pen::table
                .filter(pen::shop_id.eq(shop_id))
                .filter(pen::kind.eq("suspend"))
                .filter(pen::status.eq("active")),
        )
        .set((pen::status.eq("lifted"), pen::ended_at.eq(Some(now))))
        .execute(c)?;
        if n == 0 {
            return Err(AppError::Conflict("governance.not_suspended"));
        }
        let status = apply_status(c, shop_id, now)?;
        accounts::audit_shop(
            c,
            Some(me.id),
            "shop.reinstate",
            "shop",
            Some(shop_id),
            Some(shop_id),
            &format!("{reason}; shop {status}"),
        )?;
        notify_status(c, shop_id, status, reason)
    })
}

pub fn check_reason(reason: &str) -> Result<&str, AppError> {
    let reason = reason.trim();
    if (4..=500).contains(&reason.chars().count()) {
        Ok(reason)
    } else {
        Err(AppError::field("reason", "reason_length"))
    }
}

fn notify_status(c: &mut DbConn, shop_id: i64, status: &str, reason: &str) -> Result<(), AppError> {
    enforce::notify_shop(c, shop_id, "shop_status", "shop_status", |l| {
        vec![
            ("status", status_text(l, status)),
            ("reason", reason.to_string()),
        ]
    })
}

// ---------- reading ----------

/// A violation with what the pages show beside it.
#[derive(Debug, Clone)]
pub struct ViolationRow {
    pub v: Violation,
    pub kind: ViolationType,
    pub shop_name: String,
    pub shop_slug: String,
    pub penalties: Vec<Penalty>,
    pub appeal: Option<super::appeals::Appeal>,
}

/// Violations, newest first, of one shop or (for moderators, `shop` None) of all shops with
/// an optional status filter.
pub fn list(
    c: &mut DbConn,
    shop: Option<i64>,
    status: Option<&str>,
    page: PageQuery,
    per_page: i64,
) -> Result<Paginated<ViolationRow>, AppError> {
    let filtered = || {
        let mut q = vio::table.into_boxed();
        if let Some(s) = shop {
            q = q.filter(vio::shop_id.eq(s));
        }
        if let Some(st) = status {
            q = q.filter(vio::status.eq(st.to_string()));
        }
        q
    };
    let total: i64 = filtered().count().get_result(c)?;
    let rows: Vec<(Violation, ViolationType, String, String)> = filtered()
        .inner_join(vt::table)
        .inner_join(shops::table)
        .order(vio::id.desc())
        .limit(per_page)
        .offset(page.offset(per_page))
        .select((
            Violation::as_select(),
            ViolationType::as_select(),
            shops::name,
            shops::slug,
        ))
        .load(c)?;
    Ok(Paginated {
        items: with_details(c, rows)?,
        page: page.number(),
        per_page,
        total,
    })
}

fn with_details(
    c: &mut DbConn,
    rows: Vec<(Violation, ViolationType, String, String)>,
) -> Result<Vec<ViolationRow>, AppError> {
    let ids: Vec<i64> = rows.iter().map(|r| r.0.id).collect();
    let pens: Vec<Penalty> = pen::table
        .filter(pen::violation_id.eq_any(&ids))
        .select(Penalty::as_select())
        .load(c)?;
    let apps: Vec<super::appeals::Appeal> = appeals::table
        .filter(appeals::violation_id.eq_any(&ids))
        .select(super::appeals::Appeal::as_select())
        .load(c)?;
    Ok(rows
        .into_iter()
        .map(|(v, kind, shop_name, shop_slug)| ViolationRow {
            penalties: pens
                .iter()
                .filter(|p| p.violation_id == Some(v.id))
                .cloned()
                .collect(),
            appeal: apps.iter().find(|a| a.violation_id == v.id).cloned(),
            v,
            kind,
            shop_name,
            shop_slug,
        })
        .collect())
}

/// One violation with its details.
pub fn get(c: &mut DbConn, id: i64) -> Result<ViolationRow, AppError> {
    get_many(c, &[id])?
        .into_iter()
        .next()
        .ok_or(AppError::NotFound)
}

/// Violations with their details, in no particular order (unknown ids are left out); three
/// queries for any number.
pub fn get_many(c: &mut DbConn, ids: &[i64]) -> Result<Vec<ViolationRow>, AppError> {
    let rows: Vec<(Violation, ViolationType, String, String)> = vio::table
        .filter(vio::id.eq_any(ids))
        .inner_join(vt::table)
        .inner_join(shops::table)
        .select((
            Violation::as_select(),
            ViolationType::as_select(),
            shops::name,
            shops::slug,
        ))
        .load(c)?;
    with_details(c, rows)
}

/// Penalties of a shop, newest first (with the manual ones and the score's clearance).
pub fn shop_penalties(c: &mut DbConn, shop_id: i64, limit: i64) -> Result<Vec<Penalty>, AppError> {
    Ok(pen::table
        .filter(pen::shop_id.eq(shop_id))
        .order(pen::id.desc())
        .limit(limit)
        .select(Penalty::as_select())
        .load(c)?)
}

/// Per track: (track, points this year, the next node ahead as (at, node)).
pub type TrackStanding = (String, i64, Option<(i64, Node)>);

pub fn standing(c: &mut DbConn, shop_id: i64, year: i64) -> Result<Vec<TrackStanding>, AppError> {
    let all = nodes(c)?;
    let mut out = Vec::new();
    for t in TRACKS {
        let p = points_of(c, shop_id, t, year)?;
        let next = points::next_node(&all, t, p).map(|(at, n)| (at, n.clone()));
        out.push((t.to_string(), p, next));
    }
    Ok(out)
}

/// Today's enforcement: violations recorded, penalties started and appeals decided since
/// `since`.
pub fn counts_since(c: &mut DbConn, since: NaiveDateTime) -> Result<(i64, i64, i64), AppError> {
    let v = vio::table
        .filter(vio::created_at.ge(since))
        .count()
        .get_result(c)?;
    let p = pen::table
        .filter(pen::created_at.ge(since))
        .count()
        .get_result(c)?;
    let a = appeals::table
        .filter(appeals::decided_at.ge(since))
        .count()
        .get_result(c)?;
    Ok((v, p, a))
}

/// An admin clears a shop by hand (moderators may not): permanent, products delisted.
pub fn clear_by_hand(
    conn: &mut DbConn,
    me: &SessionUser,
    shop_id: i64,
    reason: &str,
    now: NaiveDateTime,
) -> Result<(), AppError> {
    if !me.has_role(Role::Admin) {
        return Err(AppError::Forbidden("error.403.body"));
    }
    let reason = check_reason(reason)?;
    write_tx(conn, |c| {
        let exists: i64 = shops::table.find(shop_id).count().get_result(c)?;
        if exists == 0 {
            return Err(AppError::NotFound);
        }
        if enforce::clear_shop(c, shop_id, Some(me.id), "shop.clear", reason, now)? {
            Ok(())
        } else {
            Err(AppError::Conflict("governance.shop_cleared"))
        }
    })
}

/// What the moderators' overview shows.
#[derive(Debug, Clone, Default)]
pub struct Overview {
    pub review_queue: i64,
    pub appeals_pending: i64,
    pub appeals_overdue: i64,
    pub complaints_open: i64,
    pub violations_today: i64,
    pub penalties_today: i64,
    pub appeals_decided_today: i64,
    pub penalties_in_force: i64,
    /// Shops on clearance watch in the newest score day: (slug, name, consecutive low days).
    pub watch: Vec<(String, String, i64)>,
}

pub fn overview(
    c: &mut DbConn,
    tz: chrono_tz::Tz,
    now: NaiveDateTime,
) -> Result<Overview, AppError> {
    use crate::db::schema::{complaints, dsr_snapshots as snap};
    use chrono::TimeZone;
    let local = tz.from_utc_datetime(&now).date_naive();
    let since = local
        .and_hms_opt(0, 0, 0)
        .and_then(|t| tz.from_local_datetime(&t).earliest())
        .map(|t| t.naive_utc())
        .unwrap_or(now);
    let (violations_today, penalties_today, appeals_decided_today) = counts_since(c, since)?;
    let day: Option<String> = snap::table.select(diesel::dsl::max(snap::day)).first(c)?;
    let watch = match day {
        Some(d) => snap::table
            .inner_join(shops::table)
            .filter(snap::day.eq(d))
            .filter(snap::tier.eq("watch"))
            .order(snap::low_days.desc())
            .limit(20)
            .select((shops::slug, shops::name, snap::low_days))
            .load(c)?,
        None => Vec::new(),
    };
    Ok(Overview {
        review_queue: products::table
            .filter(products::status.eq("pending_review"))
            .count()
            .get_result(c)?,
        appeals_pending: super::appeals::pending_count(c)?,
        appeals_overdue: appeals::table
            .filter(appeals::status.eq("pending"))
            .filter(appeals::deadline.lt(now))
            .count()
            .get_result(c)?,
        complaints_open: complaints::table
            .filter(complaints::status.eq("open"))
            .count()
            .get_result(c)?,
        violations_today,
        penalties_today,
        appeals_decided_today,
        penalties_in_force: pen::table
            .filter(pen::status.eq("active"))
            .filter(pen::ends_at.is_null().or(pen::ends_at.gt(now)))
            .count()
            .get_result(c)?,
        watch,
    })
}

/// One shop's whole record for moderators.
pub struct ShopRecord {
    pub shop: crate::shops::Shop,
    pub official: String,
    pub standing: Vec<TrackStanding>,
    pub year: i64,
    pub violations: Paginated<ViolationRow>,
    pub penalties: Vec<Penalty>,
    pub score: Option<crate::dsr::score::Snapshot>,
    pub audit: Vec<super::audit::AuditRow>,
}

pub fn shop_record(
    c: &mut DbConn,
    me: &SessionUser,
    shop_id: i64,
    tz: chrono_tz::Tz,
    now: NaiveDateTime,
    page: PageQuery,
) -> Result<ShopRecord, AppError> {
    use crate::db::schema::users;
    if !me.has_role(Role::Moderator) {
        return Err(AppError::Forbidden("error.403.body"));
    }
    let (shop, official): (crate::shops::Shop, String) = shops::table
        .inner_join(users::table)
        .filter(shops::id.eq(shop_id))
        .select((crate::shops::Shop::as_select(), users::handle))
        .first(c)
        .optional()?
        .ok_or(AppError::NotFound)?;
    let year = points::year_of(tz, now);
    Ok(ShopRecord {
        standing: standing(c, shop_id, year)?,
        year,
        violations: list(c, Some(shop_id), None, page, 20)?,
        penalties: shop_penalties(c, shop_id, 100)?,
        score: crate::dsr::score::latest(c, shop_id)?,
        audit: super::audit::of_shop(c, shop_id, 50)?,
        shop,
        official,
    })
}

#[cfg(test)]
mod tests {
    use super::derive_status;
    use chrono::NaiveDate;

    #[test]
    fn the_harshest_penalty_in_force_sets_the_status() {
        let t = |d: u32| {
            NaiveDate::from_ymd_opt(2026, 12, d)
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .expect("date")
        };
        assert_eq!(derive_status(&[]), ("active", None));
        let r = |d| ("restrict".to_string(), Some(t(d)));
        assert_eq!(derive_status(&[r(8), r(15)]), ("restricted", Some(t(15))));
        // A closure outranks a longer restriction; a suspension by hand has no end.
        let close = ("close".to_string(), Some(t(22)));
        assert_eq!(
            derive_status(&[r(30), close.clone()]),
            ("suspended", Some(t(22)))
        );
        let suspend = ("suspend".to_string(), None);
        assert_eq!(derive_status(&[close, suspend]), ("suspended", None));
        assert_eq!(
            derive_status(&[r(8), ("clear".to_string(), None)]),
            ("cleared", None)
        );
    }
}
