//! Appeals (申诉): one per violation, within the appeal window after the notice, with text and
//! evidence. The penalty stays in force meanwhile. A moderator upholds or revokes; revoking
//! voids the violation's points and undoes exactly the penalty it caused (and relists exactly
//! the products it delisted). Decisions are compare-and-set: of two moderators deciding the
//! same appeal, one wins and the other gets a clear conflict.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use super::enforce;
use super::violations::{self, media_ids, param, ViolationRow};
use crate::accounts::{service as accounts, Role, SessionUser};
use crate::db::schema::{appeals, penalties as pen, violations as vio};
use crate::db::{is_unique_violation, write_tx, DbConn};
use crate::error::{AppError, FieldErrors};
use crate::i18n;
use crate::pagination::{PageQuery, Paginated};
use crate::shops::model::ShopRole;
use crate::shops::service::{membership, require_shop_role};

pub const MAX_FILES: usize = 5;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = appeals)]
pub struct Appeal {
    pub id: i64,
    pub violation_id: i64,
    pub shop_id: i64,
    pub body: String,
    pub evidence_media_ids: String,
    pub submitted_by: i64,
    pub status: String,
    pub decided_by: Option<i64>,
    pub decision_reason: String,
    pub deadline: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub decided_at: Option<NaiveDateTime>,
}

impl Appeal {
    pub fn evidence(&self) -> Vec<i64> {
        media_ids(&self.evidence_media_ids)
    }
    pub fn is_pending(&self) -> bool {
        self.status == "pending"
    }
}

/// The shop's owner appeals one of its violations.
pub fn submit(
    conn: &mut DbConn,
    me: &SessionUser,
    violation_id: i64,
    body: &str,
    files: &[(String, Vec<u8>)],
    now: NaiveDateTime,
) -> Result<i64, AppError> {
    let m = require_shop_role(conn, me, ShopRole::Owner)?;
    let v = violations::get(conn, violation_id)?;
    if v.v.shop_id != m.shop.id {
        return Err(AppError::NotFound);
    }
    let mut errors = FieldErrors::new();
    let body = body.trim();
    if !(10..=2000).contains(&body.chars().count()) {
        errors.add("body", "appeal_body");
    }
    if files.len() > MAX_FILES {
        errors.add("evidence", "violation_files");
    }
    errors.into_result()?;
    if now > v.v.appeal_deadline {
        return Err(AppError::Conflict("appeal.too_late"));
    }
    write_tx(conn, |c| {
        let n = diesel::update(
            vio::table
                .find(violation_id)
                .filter(vio::status.eq("active"))
                .filter(vio::appeal_deadline.ge(now)),
        )
        .set(vio::status.eq("appealed"))
        .execute(c)?;
        if n == 0 {
            return Err(AppError::Conflict("appeal.exists"));
        }
        let mut ids = Vec::new();
        for (ct, bytes) in files {
            ids.push(accounts::store_private_media(c, me.id, ct, bytes, now)?.to_string());
        }
        let review_days = param(c, "appeal_review_days", 3)?;
        let r = diesel::insert_into(appeals::table)
            .values((
                appeals::violation_id.eq(violation_id),
                appeals::shop_id.eq(v.v.shop_id),
                appeals::body.eq(body),
                appeals::evidence_media_ids.eq(ids.join(",")),
                appeals::submitted_by.eq(me.id),
                appeals::status.eq("pending"),
                appeals::deadline.eq(now + Duration::days(review_days)),
                appeals::created_at.eq(now),
            ))
            .returning(appeals::id)
            .get_result(c);
        match r {
            Ok(id) => Ok(id),
            Err(e) if is_unique_violation(&e) => Err(AppError::Conflict("appeal.exists")),
            Err(e) => Err(e.into()),
        }
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Uphold,
    Revoke,
}

impl Verdict {
    pub fn parse(s: &str) -> Option<Verdict> {
        match s {
            "uphold" => Some(Verdict::Uphold),
            "revoke" => Some(Verdict::Revoke),
            _ => None,
        }
    }
    fn status(self) -> (&'static str, &'static str) {
        match self {
            Verdict::Uphold => ("upheld", "upheld"),
            Verdict::Revoke => ("revoked", "revoked"),
        }
    }
}

/// What a decision changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    pub shop_status: String,
    pub relisted: usize,
}

/// A moderator decides an appeal.
pub fn decide(
    conn: &mut DbConn,
    me: &SessionUser,
    appeal_id: i64,
    verdict: Verdict,
    reason: &str,
    tz: chrono_tz::Tz,
    now: NaiveDateTime,
) -> Result<Decided, AppError> {
    if !me.has_role(Role::Moderator) {
        return Err(AppError::Forbidden("error.403.body"));
    }
    let reason = violations::check_reason(reason)?;
    let (appeal_status, violation_status) = verdict.status();
    write_tx(conn, |c| {
        let a: Appeal = appeals::table
            .find(appeal_id)
            .select(Appeal::as_select())
            .first(c)
            .optional()?
            .ok_or(AppError::NotFound)?;
        let n = diesel::update(
            appeals::table
                .find(appeal_id)
                .filter(appeals::status.eq("pending")),
        )
        .set((
            appeals::status.eq(appeal_status),
            appeals::decided_by.eq(Some(me.id)),
            appeals::decision_reason.eq(reason),
            appeals::decided_at.eq(Some(now)),
        ))
        .execute(c)?;
        if n == 0 {
            return Err(AppError::Conflict("appeal.already_decided"));
        }
        let n = diesel::update(
            vio::table
                .find(a.violation_id)
                .filter(vio::status.eq("appealed")),
        )
        .set((
            vio::status.eq(violation_status),
            vio::revoked_at.eq((verdict == Verdict::Revoke).then_some(now)),
        ))
        .execute(c)?;
        if n == 0 {
            return Err(AppError::Conflict("appeal.already_decided"));
        }
        let mut relisted = 0;
        let mut undone = 0;
        if verdict == Verdict::Revoke {
            undone = diesel::update(
                pen::table
                    .filter(pen::violation_id.eq(a.violation_id))
                    .filter(pen::status.eq("active")),
            )
            .set((pen::status.eq("revoked"), pen::ended_at.eq(Some(now))))
            .execute(c)?;
        }
        let shop_status = violations::apply_status(c, a.shop_id, now)?;
        if verdict == Verdict::Revoke && shop_status != "cleared" {
            relisted = violations::relist_for(c, a.violation_id, now)?;
        }
        accounts::audit_shop(
            c,
            Some(me.id),
            if verdict == Verdict::Revoke {
                "appeal.revoke"
            } else {
                "appeal.uphold"
            },
            "appeal",
            Some(appeal_id),
            Some(a.shop_id),
            &format!(
                "violation {}: {reason}; penalties undone {undone}; products relisted {relisted}; shop {shop_status}",
                a.violation_id
            ),
        )?;
        enforce::notify_shop(c, a.shop_id, "appeal_decided", "appeal", |l| {
            vec![
                (
                    "verdict",
                    i18n::t(l, &format!("appeal.status.{appeal_status}")).into_owned(),
                ),
                ("reason", reason.to_string()),
                ("time", enforce::local_time(tz, now)),
            ]
        })?;
        Ok(Decided {
            shop_status: shop_status.to_string(),
            relisted,
        })
    })
}

/// An appeal with its violation, for the queue.
#[derive(Debug, Clone)]
pub struct QueueRow {
    pub appeal: Appeal,
    pub violation: ViolationRow,
}

/// Appeals by status (pending first by deadline; decided newest first).
pub fn queue(
    c: &mut DbConn,
    me: &SessionUser,
    pending: bool,
    page: PageQuery,
    per_page: i64,
) -> Result<Paginated<QueueRow>, AppError> {
    if !me.has_role(Role::Moderator) {
        return Err(AppError::Forbidden("error.403.body"));
    }
    let filtered = || {
        if pending {
            appeals::table
                .filter(appeals::status.eq("pending"))
                .into_boxed()
        } else {
            appeals::table
                .filter(appeals::status.ne("pending"))
                .into_boxed()
        }
    };
    let total: i64 = filtered().count().get_result(c)?;
    let mut q = filtered();
    q = if pending {
        q.order((appeals::deadline, appeals::id))
    } else {
        q.order(appeals::decided_at.desc())
    };
    let rows: Vec<Appeal> = q
        .limit(per_page)
        .offset(page.offset(per_page))
        .select(Appeal::as_select())
        .load(c)?;
    let ids: Vec<i64> = rows.iter().map(|a| a.violation_id).collect();
    let mut found = violations::get_many(c, &ids)?;
    let mut items = Vec::with_capacity(rows.len());
    for appeal in rows {
        let at = found
            .iter()
            .position(|v| v.v.id == appeal.violation_id)
            .ok_or(AppError::NotFound)?;
        let violation = found.swap_remove(at);
        items.push(QueueRow { appeal, violation });
    }
    Ok(Paginated {
        items,
        page: page.number(),
        per_page,
        total,
    })
}

/// The number of appeals waiting for a decision.
pub fn pending_count(c: &mut DbConn) -> Result<i64, AppError> {
    Ok(appeals::table
        .filter(appeals::status.eq("pending"))
        .count()
        .get_result(c)?)
}

/// Whether `viewer` may see evidence file `media` of violation `violation_id`: moderators, and
/// members of the violation's shop; the file must belong to the violation or its appeal.
pub fn evidence_visible(
    c: &mut DbConn,
    viewer: &SessionUser,
    violation_id: i64,
    media: i64,
) -> Result<bool, AppError> {
    let v = violations::get(c, violation_id)?;
    let belongs = v.v.evidence().contains(&media)
        || v.appeal
            .as_ref()
            .is_some_and(|a| a.evidence().contains(&media));
    if !belongs {
        return Ok(false);
    }
    if viewer.has_role(Role::Moderator) {
        return Ok(true);
    }
    Ok(membership(c, viewer.id)?.is_some_and(|m| m.shop.id == v.v.shop_id))
}

pub fn get(c: &mut DbConn, id: i64) -> Result<Appeal, AppError> {
    appeals::table
        .find(id)
        .select(Appeal::as_select())
        .first(c)
        .optional()?
        .ok_or(AppError::NotFound)
}
