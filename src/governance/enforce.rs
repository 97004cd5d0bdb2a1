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
    accounts::audit_shop(
        c,
        actor,
        action,
        "shop",
        Some(shop_id),
        Some(shop_id),
        &format!("{reason} (products delisted: {delisted})"),
    )?;
    let (name, email, locale): (String, String, Option<String>) = shops::table
        .inner_join(users::table)
        .filter(shops::id.eq(shop_id))
        .select((shops::name, users::email, users::locale))
        .first(c)?;
    let l = locale
        .as_deref()
        .and_then(Locale::parse)
        .unwrap_or_default();
    mail::enqueue(
        c,
        &Outgoing {
            to: &email,
            kind: "shop_cleared",
            subject: i18n::tf(l, "mail.shop_cleared.subject", &[("shop", &name)]),
            body: i18n::tf(
                l,
                "mail.shop_cleared.body",
                &[("shop", &name), ("reason", reason)],
            ),
        },
    )?;
    Ok(true)
}
