//! After-sale: the buyer asks for a refund (refund only, or return and refund) with a reason,
//! text and photos; the shop approves or rejects with a reason, or says nothing and the
//! platform approves after the answer window. A return is refunded when the shop confirms the
//! goods arrived, restocking them if it chooses. Every step is a compare-and-set on the
//! request's status with a line in the order's timeline, and the other side is emailed.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use super::model::{Order, OrderStatus};
use super::service::{event, own_order, restock, user_mail};
use crate::accounts::SessionUser;
use crate::db::schema::{orders, payments, refunds, shops, users};
use crate::db::{is_unique_violation, write_tx, DbConn};
use crate::error::{AppError, FieldErrors};
use crate::i18n::{self, Locale};
use crate::mail::{self, Outgoing};
use crate::pagination::{PageQuery, Paginated};
use crate::shops::model::ShopRole;
use crate::shops::service::require_shop_role;

/// Reasons a buyer picks from, each with the category the experience score counts.
pub const REASONS: [(&str, &str); 7] = [
    ("quality", "quality"),
    ("not_as_described", "quality"),
    ("wrong_item", "quality"),
    ("damaged_in_transit", "logistics"),
    ("not_received", "logistics"),
    ("changed_mind", "other"),
    ("other", "other"),
];

/// Most photos on one request.
pub const MAX_PHOTOS: usize = 3;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = refunds)]
pub struct Refund {
    pub id: i64,
    pub order_id: i64,
    pub kind: String,
    pub reason: String,
    pub reason_category: String,
    pub note: String,
    pub photo_media_ids: String,
    pub amount_fen: i64,
    pub status: String,
    pub respond_by: NaiveDateTime,
    pub return_address: String,
    pub return_tracking_no: Option<String>,
    pub reject_reason: String,
    pub restocked: bool,
    pub auto_approved: bool,
    pub requested_at: NaiveDateTime,
    pub decided_at: Option<NaiveDateTime>,
    pub completed_at: Option<NaiveDateTime>,
}

impl Refund {
    pub fn photos(&self) -> Vec<i64> {
        self.photo_media_ids
            .split(',')
            .filter_map(|s| s.parse().ok())
            .collect()
    }
    pub fn is_open(&self) -> bool {
        self.status == "requested" || self.status == "awaiting_return"
    }
    pub fn is_return(&self) -> bool {
        self.kind == "return_refund"
    }
}

/// A new request, already parsed from its form.
#[derive(Debug, Default, Clone)]
pub struct RefundRequest {
    pub kind: String,
    pub reason: String,
    pub note: String,
    /// Yuan as typed; empty means everything still refundable.
    pub amount: String,
    /// (content type, bytes) of each photo, already checked to be an image.
    pub photos: Vec<(String, Vec<u8>)>,
}

/// The configured after-sale windows (from settings).
#[derive(Debug, Clone, Copy)]
pub struct RefundRules {
    /// Hours the shop has to answer before the request is approved automatically.
    pub respond_hours: i64,
    /// Days after completion during which a request may still be made.
    pub after_sale_days: i64,
    /// The platform's time zone, for times in emails.
    pub tz: chrono_tz::Tz,
}

impl RefundRules {
    pub fn from_settings(s: &crate::config::Settings) -> RefundRules {
        RefundRules {
            respond_hours: s.refund_respond_hours,
            after_sale_days: s.after_sale_days,
            tz: s.tz,
        }
    }
    /// A stored UTC time as the platform's local time.
    fn local(&self, t: NaiveDateTime) -> String {
        use chrono::TimeZone;
        self.tz
            .from_utc_datetime(&t)
            .format("%Y-%m-%d %H:%M")
            .to_string()
    }
}

/// How much of an order can still be refunded.
fn refundable(o: &Order) -> i64 {
    o.total_fen - o.refunded_fen
}

/// The buyer asks for a refund. Unshipped orders can only be refunded whole (refund only);
/// a return needs the goods to have shipped; completed orders stay open for `after_sale_days`.
pub fn request(
    conn: &mut DbConn,
    me: &SessionUser,
    order_no: &str,
    req: &RefundRequest,
    now: NaiveDateTime,
    rules: &RefundRules,
) -> Result<i64, AppError> {
    let (respond_hours, after_sale_days) = (rules.respond_hours, rules.after_sale_days);
    let mut errors = FieldErrors::new();
    let kind = req.kind.as_str();
    if !matches!(kind, "refund_only" | "return_refund") {
        errors.add("kind", "refund_kind");
    }
    let category = REASONS
        .iter()
        .find(|(r, _)| *r == req.reason)
        .map(|(_, c)| *c);
    if category.is_none() {
        errors.add("reason", "refund_reason");
    }
    let note = req.note.trim();
    if note.chars().count() > 500
        || note
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\r')
    {
        errors.add("note", "refund_note");
    }
    if req.photos.len() > MAX_PHOTOS {
        errors.add("photos", "refund_photos");
    }
    let typed = if req.amount.trim().is_empty() {
        None
    } else {
        match crate::catalog::model::parse_yuan(&req.amount) {
            Some(v) if v > 0 => Some(v),
            _ => {
                errors.add("amount", "refund_amount");
                None
            }
        }
    };
    errors.into_result()?;
    let category = category.unwrap_or("other");
    write_tx(conn, |c| {
        let order = own_order(c, me, order_no)?;
        let state = order.state();
        let allowed = match state {
            Some(OrderStatus::Paid) => kind == "refund_only",
            Some(OrderStatus::Shipped | OrderStatus::Delivered) => true,
            Some(OrderStatus::Completed) => order
                .completed_at
                .is_some_and(|t| now - t <= Duration::days(after_sale_days)),
            _ => false,
        };
        if !allowed {
            return Err(AppError::Conflict("refund.not_allowed"));
        }
        let left = refundable(&order);
        if left <= 0 {
            return Err(AppError::Conflict("refund.nothing_left"));
        }
        let amount = match (state, typed) {
            // An unshipped order is refunded whole: it is closed and its stock released.
            (Some(OrderStatus::Paid), _) | (_, None) => left,
            (_, Some(v)) if v <= left => v,
            _ => return Err(AppError::field("amount", "refund_amount")),
        };
        let mut photo_ids = Vec::new();
        for (ct, bytes) in &req.photos {
            photo_ids.push(crate::accounts::service::store_private_media(
                c, me.id, ct, bytes, now,
            )?);
        }
        let photo_ids: Vec<String> = photo_ids.iter().map(i64::to_string).collect();
        let inserted = diesel::insert_into(refunds::table)
            .values((
                refunds::order_id.eq(order.id),
                refunds::shop_id.eq(order.shop_id),
                refunds::buyer_id.eq(me.id),
                refunds::kind.eq(kind),
                refunds::reason.eq(&req.reason),
                refunds::reason_category.eq(category),
                refunds::note.eq(note),
                refunds::photo_media_ids.eq(photo_ids.join(",")),
                refunds::amount_fen.eq(amount),
                refunds::status.eq("requested"),
                refunds::respond_by.eq(now + Duration::hours(respond_hours)),
                refunds::requested_at.eq(now),
            ))
            .execute(c);
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(AppError::Conflict("refund.already_open"))
            }
            Err(e) => return Err(e.into()),
        }
        let id: i64 = refunds::table
            .filter(refunds::order_id.eq(order.id))
            .order(refunds::id.desc())
            .select(refunds::id)
            .first(c)?;
        event(
            c,
            order.id,
            "refund_requested",
            Some(me.id),
            &req.reason,
            now,
        )?;
        let deadline = now + Duration::hours(rules.respond_hours);
        notify_shop(c, &order, amount, &req.reason, rules.local(deadline))?;
        Ok(id)
    })
}

fn notify_shop(
    c: &mut DbConn,
    order: &Order,
    amount: i64,
    reason: &str,
    deadline: String,
) -> Result<(), AppError> {
    let owner: i64 = shops::table
        .find(order.shop_id)
        .select(shops::official_user_id)
        .first(c)?;
    let (email, _, l) = user_mail(c, owner)?;
    let reason_text = i18n::t(l, &format!("refund.reason.{reason}")).into_owned();
    mail::enqueue(
        c,
        &Outgoing {
            to: &email,
            kind: "refund_requested",
            subject: i18n::tf(
                l,
                "mail.refund_requested.subject",
                &[("order", &order.order_no)],
            ),
            body: i18n::tf(
                l,
                "mail.refund_requested.body",
                &[
                    ("order", &order.order_no),
                    ("amount", &i18n::money(amount)),
                    ("reason", &reason_text),
                    ("deadline", &deadline),
                ],
            ),
        },
    )
}

fn notify_buyer(c: &mut DbConn, order: &Order, outcome_key: &str) -> Result<(), AppError> {
    let (email, name, l): (String, String, Locale) = user_mail(c, order.buyer_id)?;
    let outcome = i18n::t(l, outcome_key).into_owned();
    mail::enqueue(
        c,
        &Outgoing {
            to: &email,
            kind: "refund_decided",
            subject: i18n::tf(
                l,
                "mail.refund_decided.subject",
                &[("order", &order.order_no)],
            ),
            body: i18n::tf(
                l,
                "mail.refund_decided.body",
                &[
                    ("name", &name),
                    ("order", &order.order_no),
                    ("outcome", &outcome),
                ],
            ),
        },
    )
}

/// Moves a request from `from` to `to` if it is still there; 409 otherwise.
fn refund_cas(
    c: &mut DbConn,
    id: i64,
    from: &str,
    to: &str,
    now: NaiveDateTime,
) -> Result<(), AppError> {
    let n = diesel::update(refunds::table.find(id).filter(refunds::status.eq(from)))
        .set((refunds::status.eq(to), refunds::decided_at.eq(Some(now))))
        .execute(c)?;
    if n == 0 {
        return Err(AppError::Conflict("refund.changed"));
    }
    Ok(())
}

/// Pays the refund back: the order's refunded amount grows; a fully refunded order closes,
/// and an order that never shipped gets its stock back.
fn pay_back(
    c: &mut DbConn,
    r: &Refund,
    order: &Order,
    restock_goods: bool,
    now: NaiveDateTime,
) -> Result<(), AppError> {
    if order.is(OrderStatus::Cancelled) || order.is(OrderStatus::Closed) {
        return Err(AppError::Conflict("refund.order_closed"));
    }
    if r.amount_fen > refundable(order) {
        return Err(AppError::Conflict("refund.nothing_left"));
    }
    diesel::update(refunds::table.find(r.id))
        .set((
            refunds::completed_at.eq(Some(now)),
            refunds::restocked.eq(restock_goods),
        ))
        .execute(c)?;
    diesel::update(orders::table.find(order.id))
        .set((
            orders::refunded_fen.eq(orders::refunded_fen + r.amount_fen),
            orders::updated_at.eq(now),
        ))
        .execute(c)?;
    let fully = order.refunded_fen + r.amount_fen >= order.total_fen;
    if fully {
        diesel::update(
            orders::table
                .find(order.id)
                .filter(orders::status.ne(OrderStatus::Closed.as_str())),
        )
        .set(orders::status.eq(OrderStatus::Closed.as_str()))
        .execute(c)?;
        diesel::update(
            payments::table
                .filter(payments::order_id.eq(order.id))
                .filter(payments::status.eq("succeeded")),
        )
        .set(payments::status.eq("refunded"))
        .execute(c)?;
    }
    if restock_goods || order.is(OrderStatus::Paid) {
        restock(c, order.id)?;
    }
    event(
        c,
        order.id,
        "refunded",
        None,
        &i18n::money(r.amount_fen),
        now,
    )?;
    notify_buyer(c, order, "refund.outcome.refunded")
}

fn load(c: &mut DbConn, id: i64) -> Result<(Refund, Order), AppError> {
    let r: Refund = refunds::table
        .find(id)
        .select(Refund::as_select())
        .first(c)
        .optional()?
        .ok_or(AppError::NotFound)?;
    let o: Order = orders::table
        .find(r.order_id)
        .select(Order::as_select())
        .first(c)?;
    Ok((r, o))
}

/// The shop's request, for its customer service or owner; another shop's is "not found".
fn shop_refund(c: &mut DbConn, me: &SessionUser, id: i64) -> Result<(Refund, Order), AppError> {
    let m = require_shop_role(c, me, ShopRole::CustomerService)?;
    let (r, o) = load(c, id)?;
    if o.shop_id != m.shop.id {
        return Err(AppError::NotFound);
    }
    Ok((r, o))
}

/// The shop agrees. A refund-only request is paid back at once; a return waits for the goods
/// at `return_address`.
pub fn approve(
    conn: &mut DbConn,
    me: &SessionUser,
    id: i64,
    return_address: &str,
    now: NaiveDateTime,
) -> Result<(), AppError> {
    let address = return_address.trim();
    write_tx(conn, |c| {
        let (r, o) = shop_refund(c, me, id)?;
        if r.is_return() {
            if !(6..=200).contains(&address.chars().count()) {
                return Err(AppError::field("return_address", "return_address"));
            }
            refund_cas(c, r.id, "requested", "awaiting_return", now)?;
            diesel::update(refunds::table.find(r.id))
                .set((
                    refunds::return_address.eq(address),
                    refunds::decided_by.eq(Some(me.id)),
                ))
                .execute(c)?;
            event(c, o.id, "return_approved", Some(me.id), "", now)?;
            notify_buyer(c, &o, "refund.outcome.return_approved")
        } else {
            refund_cas(c, r.id, "requested", "refunded", now)?;
            diesel::update(refunds::table.find(r.id))
                .set(refunds::decided_by.eq(Some(me.id)))
                .execute(c)?;
            pay_back(c, &r, &o, false, now)
        }
    })
}

/// The shop refuses, with its reason.
pub fn reject(
    conn: &mut DbConn,
    me: &SessionUser,
    id: i64,
    reason: &str,
    now: NaiveDateTime,
) -> Result<(), AppError> {
    let reason = reason.trim();
    if !(4..=500).contains(&reason.chars().count()) {
        return Err(AppError::field("reject_reason", "reject_reason"));
    }
    write_tx(conn, |c| {
        let (r, o) = shop_refund(c, me, id)?;
        refund_cas(c, r.id, "requested", "rejected", now)?;
        diesel::update(refunds::table.find(r.id))
            .set((
                refunds::reject_reason.eq(reason),
                refunds::decided_by.eq(Some(me.id)),
            ))
            .execute(c)?;
        event(c, o.id, "refund_rejected", Some(me.id), "", now)?;
        notify_buyer(c, &o, "refund.outcome.rejected")
    })
}

/// The buyer tells the shop how the goods were sent back.
pub fn return_shipped(
    conn: &mut DbConn,
    me: &SessionUser,
    order_no: &str,
    tracking: &str,
    now: NaiveDateTime,
) -> Result<(), AppError> {
    let tracking = tracking.trim().to_ascii_uppercase();
    if !(6..=30).contains(&tracking.len())
        || !tracking
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(AppError::field("return_tracking_no", "tracking_format"));
    }
    write_tx(conn, |c| {
        let o = own_order(c, me, order_no)?;
        let n = diesel::update(
            refunds::table
                .filter(refunds::order_id.eq(o.id))
                .filter(refunds::status.eq("awaiting_return")),
        )
        .set(refunds::return_tracking_no.eq(Some(&tracking)))
        .execute(c)?;
        if n == 0 {
            return Err(AppError::Conflict("refund.changed"));
        }
        event(c, o.id, "return_shipped", Some(me.id), &tracking, now)
    })
}

/// The shop confirms the returned goods arrived: the refund is paid, and the goods go back
/// into stock when the shop says so.
pub fn confirm_return(
    conn: &mut DbConn,
    me: &SessionUser,
    id: i64,
    restock_goods: bool,
    now: NaiveDateTime,
) -> Result<(), AppError> {
    write_tx(conn, |c| {
        let (r, o) = shop_refund(c, me, id)?;
        refund_cas(c, r.id, "awaiting_return", "refunded", now)?;
        pay_back(c, &r, &o, restock_goods, now)
    })
}

/// Approves requests the shop did not answer in time: the buyer is refunded (for a return the
/// buyer keeps the goods: the shop gave no return address). At most `limit` per call.
pub fn auto_approve(conn: &mut DbConn, now: NaiveDateTime, limit: i64) -> Result<usize, AppError> {
    let due: Vec<i64> = refunds::table
        .filter(refunds::status.eq("requested"))
        .filter(refunds::respond_by.le(now))
        .order(refunds::respond_by)
        .limit(limit)
        .select(refunds::id)
        .load(conn)?;
    let mut done = 0;
    for id in due {
        let r = write_tx(conn, |c| {
            let (r, o) = load(c, id)?;
            refund_cas(c, r.id, "requested", "refunded", now)?;
            diesel::update(refunds::table.find(r.id))
                .set(refunds::auto_approved.eq(true))
                .execute(c)?;
            event(c, o.id, "refund_auto_approved", None, "", now)?;
            pay_back(c, &r, &o, false, now)
        });
        match r {
            Ok(()) => done += 1,
            Err(AppError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// An order's requests, newest first (for its page, buyer or shop).
pub fn of_order(conn: &mut DbConn, order_id: i64) -> Result<Vec<Refund>, AppError> {
    Ok(refunds::table
        .filter(refunds::order_id.eq(order_id))
        .order(refunds::id.desc())
        .select(Refund::as_select())
        .load(conn)?)
}

/// A request in the shop's list.
#[derive(Debug, Clone)]
pub struct RefundRow {
    pub refund: Refund,
    pub order_no: String,
    pub buyer: String,
}

/// The shop's requests, open ones first by their answer deadline, or of one status.
pub fn shop_list(
    conn: &mut DbConn,
    me: &SessionUser,
    status: &str,
    page: PageQuery,
) -> Result<Paginated<RefundRow>, AppError> {
    let m = require_shop_role(conn, me, ShopRole::CustomerService)?;
    let status = match status {
        "requested" | "awaiting_return" | "refunded" | "rejected" => status.to_string(),
        _ => String::new(),
    };
    let filtered = || {
        let mut q = refunds::table
            .inner_join(orders::table)
            .inner_join(users::table.on(users::id.eq(refunds::buyer_id)))
            .filter(refunds::shop_id.eq(m.shop.id))
            .into_boxed();
        if !status.is_empty() {
            q = q.filter(refunds::status.eq(status.clone()));
        }
        q
    };
    let total: i64 = filtered().count().get_result(conn)?;
    let rows: Vec<(Refund, String, String)> = filtered()
        .order((refunds::respond_by.asc(), refunds::id.desc()))
        .limit(super::service::PER_PAGE)
        .offset(page.offset(super::service::PER_PAGE))
        .select((Refund::as_select(), orders::order_no, users::handle))
        .load(conn)?;
    Ok(Paginated {
        items: rows
            .into_iter()
            .map(|(refund, order_no, buyer)| RefundRow {
                refund,
                order_no,
                buyer,
            })
            .collect(),
        page: page.number(),
        per_page: super::service::PER_PAGE,
        total,
    })
}
