//! Enforcement on shops that other modules trigger (the nightly score's clearance now; the
//! violations and penalties of the governance console later). Every action writes the audit
//! log and emails the shop in the caller's transaction.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::accounts::service as accounts;
use crate::db::schema::{products, shops, users};
use crate::db::DbConn;
use crate::error::AppError;
use crate::i18n::{self, Locale};
use crate::mail::{self, Outgoing};

use super::violations;

/// Clears a shop (清退): status `cleared` (permanent), every product it still shows delisted
/// by the platform with the reason, an audit row and an email to the official account. Runs
/// inside the caller's transaction; returns false (and does nothing) when the shop was already
/// cleared.
pub fn clear_shop(
    c: &mut DbConn,
    shop_id: i64,
    actor: Option<i64>,
    action: &str,
    reason: &str,
    now: NaiveDateTime,
) -> Result<bool, AppError> {
    let n = diesel::update(
        shops::table
            .find(shop_id)
            .filter(shops::status.ne("cleared")),
    )
    .set((
        shops::status.eq("cleared"),
        shops::restricted_until.eq(None::<NaiveDateTime>),
        shops::updated_at.eq(now),
    ))
    .execute(c)?;
    if n == 0 {
        return Ok(false);
    }
    let delisted = diesel::update(
        products::table
            .filter(products::shop_id.eq(shop_id))
            .filter(products::status.eq_any(["listed", "pending_review"])),
    )
    .set((
        products::status.eq("delisted"),
        products::status_reason.eq(reason),
        products::delisted_by_platform.eq(true),
        products::updated_at.eq(now),
    ))
    .execute(c)?;
    // The clearance is a penalty like the others, so the shop's record shows it and the
    // status derived from penalties in force keeps it.
    violations::insert_penalty(c, shop_id, None, "clear", None, reason, None, actor, now)?;
    accounts::audit_shop(
        c,
        actor,
        action,
        "shop",
        Some(shop_id),
        Some(shop_id),
        &format!("{reason} (products delisted: {delisted})"),
    )?;
    notify_shop(c, shop_id, "shop_cleared", "shop_cleared", |_| {
        vec![("reason", reason.to_string())]
    })?;
    Ok(true)
}

/// Emails the shop's official account in its language: `mail.{key}.subject` and
/// `mail.{key}.body`, filled with the shop's name and the arguments `args` gives for that
/// language. Call it inside the transaction of what it reports.
pub fn notify_shop(
    c: &mut DbConn,
    shop_id: i64,
    kind: &str,
    key: &str,
    args: impl FnOnce(Locale) -> Vec<(&'static str, String)>,
) -> Result<(), AppError> {
    let to = contact(c, shop_id)?;
    let mut all = vec![("shop", to.shop_name.clone())];
    all.extend(args(to.locale));
    let refs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (*k, v.as_str())).collect();
    mail::enqueue(
        c,
        &Outgoing {
            to: &to.email,
            kind,
            subject: i18n::tf(to.locale, &format!("mail.{key}.subject"), &refs),
            body: i18n::tf(to.locale, &format!("mail.{key}.body"), &refs),
        },
    )
}

/// Where a shop's notices go: its official account's email, in its language.
pub struct Contact {
    pub shop_name: String,
    pub email: String,
    pub locale: Locale,
}

/// A time as the merchant reads it (platform time zone).
pub fn local_time(tz: chrono_tz::Tz, t: NaiveDateTime) -> String {
    use chrono::TimeZone;
    tz.from_utc_datetime(&t)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

pub fn contact(c: &mut DbConn, shop_id: i64) -> Result<Contact, AppError> {
    let (shop_name, email, locale): (String, String, Option<String>) = shops::table
        .inner_join(users::table)
        .filter(shops::id.eq(shop_id))
        .select((shops::name, users::email, users::locale))
        .first(c)?;
    Ok(Contact {
        shop_name,
        email,
        locale: locale
            .as_deref()
            .and_then(Locale::parse)
            .unwrap_or_default(),
    })
}
