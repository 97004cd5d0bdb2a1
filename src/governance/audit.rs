//! The audit log as moderators read it: filtered by actor, shop, action and platform date,
//! paginated, and exported as CSV in chunks. The log is append-only (the database refuses
//! updates and deletes); nothing here writes to it.

use chrono::{NaiveDate, NaiveDateTime, TimeZone};
use diesel::prelude::*;
use serde::Deserialize;

use crate::accounts::{Role, SessionUser};
use crate::db::schema::{audit_log as al, shops, users};
use crate::db::{like_pattern, DbConn};
use crate::error::AppError;
use crate::pagination::{PageQuery, Paginated};

pub const PER_PAGE: i64 = 50;

/// The filters of `/admin/audit` (all optional).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct AuditFilter {
    /// The actor's handle; `system` for automatic actions.
    pub actor: String,
    /// The shop's slug.
    pub shop: String,
    /// An action, or its prefix such as `violation.`.
    pub action: String,
    /// Platform dates, inclusive.
    pub from: String,
    pub to: String,
    /// The page of `/admin/audit` (not part of the filter).
    pub page: Option<i64>,
}

impl AuditFilter {
    /// The filter as a query string (for pager and CSV links).
    pub fn query(&self) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("actor", &self.actor)
            .append_pair("shop", &self.shop)
            .append_pair("action", &self.action)
            .append_pair("from", &self.from)
            .append_pair("to", &self.to)
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct AuditRow {
    pub id: i64,
    pub created_at: NaiveDateTime,
    pub actor: Option<String>,
    pub action: String,
    pub subject_type: String,
    pub subject_id: Option<i64>,
    pub shop: Option<(String, String)>,
    pub detail: String,
}

/// The filter resolved to ids and UTC bounds. `None` inside means "matches nothing".
struct Resolved {
    actor: Option<Option<i64>>,
    system: bool,
    shop: Option<Option<i64>>,
    action: String,
    from: Option<NaiveDateTime>,
    to: Option<NaiveDateTime>,
}

fn day_start(tz: chrono_tz::Tz, d: NaiveDate) -> Option<NaiveDateTime> {
    tz.from_local_datetime(&d.and_hms_opt(0, 0, 0)?)
        .earliest()
        .map(|t| t.naive_utc())
}

fn resolve(c: &mut DbConn, f: &AuditFilter, tz: chrono_tz::Tz) -> Result<Resolved, AppError> {
    let handle = f.actor.trim().trim_start_matches('@').to_lowercase();
    let system = handle == "system";
    let actor = if handle.is_empty() || system {
        None
    } else {
        Some(
            users::table
                .filter(users::handle.eq(&handle))
                .select(users::id)
                .first::<i64>(c)
                .optional()?,
        )
    };
    let slug = f.shop.trim().to_lowercase();
    let shop = if slug.is_empty() {
        None
    } else {
        Some(
            shops::table
                .filter(shops::slug.eq(&slug))
                .select(shops::id)
                .first::<i64>(c)
                .optional()?,
        )
    };
    let date = |s: &str| NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok();
    Ok(Resolved {
        actor,
        system,
        shop,
        action: f.action.trim().chars().take(60).collect(),
        from: date(&f.from).and_then(|d| day_start(tz, d)),
        to: date(&f.to)
            .and_then(|d| d.succ_opt())
            .and_then(|d| day_start(tz, d)),
    })
}

type Boxed<'a> = al::BoxedQuery<'a, crate::db::MultiBackend>;

fn filtered(r: &Resolved) -> Boxed<'static> {
    let mut q = al::table.into_boxed();
    match r.actor {
        Some(Some(id)) => q = q.filter(al::actor_user_id.eq(id)),
        Some(None) => q = q.filter(al::id.eq(-1)),
        None if r.system => q = q.filter(al::actor_user_id.is_null()),
        None => {}
    }
    match r.shop {
        Some(Some(id)) => q = q.filter(al::shop_id.eq(id)),
        Some(None) => q = q.filter(al::id.eq(-1)),
        None => {}
    }
    if !r.action.is_empty() {
        q = q.filter(
            al::action
                .like(format!("{}%", like_pattern_prefix(&r.action)))
                .escape('\\'),
        );
    }
    if let Some(from) = r.from {
        q = q.filter(al::created_at.ge(from));
    }
    if let Some(to) = r.to {
        q = q.filter(al::created_at.lt(to));
    }
    q
}

/// `like_pattern` wraps in `%…%`; the action filter is a prefix.
fn like_pattern_prefix(s: &str) -> String {
    let p = like_pattern(s);
    p.trim_start_matches('%').trim_end_matches('%').to_string()
}

type Raw = (
    i64,
    NaiveDateTime,
    Option<i64>,
    String,
    String,
    Option<i64>,
    Option<i64>,
    String,
);

fn rows(c: &mut DbConn, raw: Vec<Raw>) -> Result<Vec<AuditRow>, AppError> {
    let actor_ids: Vec<i64> = raw.iter().filter_map(|r| r.2).collect();
    let shop_ids: Vec<i64> = raw.iter().filter_map(|r| r.6).collect();
    let handles: Vec<(i64, String)> = users::table
        .filter(users::id.eq_any(&actor_ids))
        .select((users::id, users::handle))
        .load(c)?;
    let names: Vec<(i64, String, String)> = shops::table
        .filter(shops::id.eq_any(&shop_ids))
        .select((shops::id, shops::name, shops::slug))
        .load(c)?;
    Ok(raw
        .into_iter()
        .map(
            |(id, created_at, actor, action, subject_type, subject_id, shop, detail)| AuditRow {
                id,
                created_at,
                actor: actor.and_then(|a| {
                    handles
                        .iter()
                        .find(|(i, _)| *i == a)
                        .map(|(_, h)| h.clone())
                }),
                action,
                subject_type,
                subject_id,
                shop: shop.and_then(|s| {
                    names
                        .iter()
                        .find(|(i, _, _)| *i == s)
                        .map(|(_, n, sl)| (n.clone(), sl.clone()))
                }),
                detail,
            },
        )
        .collect())
}

const COLUMNS: (
    al::id,
    al::created_at,
    al::actor_user_id,
    al::action,
    al::subject_type,
    al::subject_id,
    al::shop_id,
    al::detail,
) = (
    al::id,
    al::created_at,
    al::actor_user_id,
    al::action,
    al::subject_type,
    al::subject_id,
    al::shop_id,
    al::detail,
);

fn require(me: &SessionUser) -> Result<(), AppError> {
    if me.has_role(Role::Moderator) || me.has_role(Role::Admin) {
        Ok(())
    } else {
        Err(AppError::Forbidden("error.403.body"))
    }
}

/// One page of the log, newest first.
pub fn list(
    c: &mut DbConn,
    me: &SessionUser,
    f: &AuditFilter,
    tz: chrono_tz::Tz,
    page: PageQuery,
) -> Result<Paginated<AuditRow>, AppError> {
    require(me)?;
    let r = resolve(c, f, tz)?;
    let total: i64 = filtered(&r).count().get_result(c)?;
    let raw: Vec<Raw> = filtered(&r)
        .order(al::id.desc())
        .limit(PER_PAGE)
        .offset(page.offset(PER_PAGE))
        .select(COLUMNS)
        .load(c)?;
    Ok(Paginated {
        items: rows(c, raw)?,
        page: page.number(),
        per_page: PER_PAGE,
        total,
    })
}

/// The newest audit entries of one shop.
pub fn of_shop(c: &mut DbConn, shop_id: i64, limit: i64) -> Result<Vec<AuditRow>, AppError> {
    let raw: Vec<Raw> = al::table
        .filter(al::shop_id.eq(shop_id))
        .order(al::id.desc())
        .limit(limit)
        .select(COLUMNS)
        .load(c)?;
    rows(c, raw)
}

pub fn csv_header() -> &'static str {
    "id,time,actor,action,subject_type,subject_id,shop,detail\n"
}

/// Up to `limit` rows older than `before` as CSV, and the cursor for the next chunk (None at
/// the end).
pub fn csv_chunk(
    c: &mut DbConn,
    me: &SessionUser,
    f: &AuditFilter,
    tz: chrono_tz::Tz,
    before: Option<i64>,
    limit: i64,
) -> Result<(String, Option<i64>), AppError> {
    require(me)?;
    let r = resolve(c, f, tz)?;
    let mut q = filtered(&r);
    if let Some(b) = before {
        q = q.filter(al::id.lt(b));
    }
    let raw: Vec<Raw> = q
        .order(al::id.desc())
        .limit(limit)
        .select(COLUMNS)
        .load(c)?;
    let next = (raw.len() as i64 == limit)
        .then(|| raw.last().map(|r| r.0))
        .flatten();
    let mut out = String::new();
    for row in rows(c, raw)? {
        let t = tz
            .from_utc_datetime(&row.created_at)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string();
        let fields = [
            row.id.to_string(),
            t,
            row.actor.unwrap_or_else(|| "system".into()),
            row.action,
            row.subject_type,
            row.subject_id.map(|s| s.to_string()).unwrap_or_default(),
            row.shop.map(|(_, s)| s).unwrap_or_default(),
            row.detail,
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    Ok((out, next))
}

/// One CSV field: quoted when needed, and neutralised against spreadsheet formulas.
fn csv_field(s: &str) -> String {
    let s = crate::catalog::service::csv_safe(s);
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}
