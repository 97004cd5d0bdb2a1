//! Buyers' complaints about a shop: filed from an order, answered once by the shop, ruled by a
//! moderator (merchant at fault or not) with an audit row and an email to both sides.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::service::{own_order, user_mail};
use crate::accounts::{service as accounts, Role, SessionUser};
use crate::db::schema::{complaints, orders, shops, users};
use crate::db::{is_unique_violation, write_tx, DbConn};
use crate::error::{AppError, FieldErrors};
use crate::i18n;
use crate::mail::{self, Outgoing};
use crate::pagination::{PageQuery, Paginated};
use crate::shops::model::ShopRole;
use crate::shops::service::require_shop_role;

pub const REASONS: [&str; 6] = [
    "fake_shipping",
    "refuse_after_sale",
    "abusive_service",
    "not_as_described",
    "late_shipping",
    "other",
];

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = complaints)]
pub struct Complaint {
    pub id: i64,
    pub shop_id: i64,
    pub order_id: Option<i64>,
    pub reason: String,
    pub body: String,
    pub evidence_media_ids: String,
    pub merchant_reply: String,
    pub status: String,
    pub merchant_at_fault: Option<bool>,
    pub ruling_note: String,
    pub created_at: NaiveDateTime,
    pub ruled_at: Option<NaiveDateTime>,
}

impl Complaint {
    pub fn evidence(&self) -> Vec<i64> {
        self.evidence_media_ids
            .split(',')
            .filter_map(|s| s.parse().ok())
            .collect()
    }
    pub fn is_open(&self) -> bool {
        self.status == "open"
    }
}

/// A complaint with the names a list shows.
#[derive(Debug, Clone)]
pub struct ComplaintRow {
    pub complaint: Complaint,
    pub shop_name: String,
    pub buyer: String,
    pub order_no: Option<String>,
}

/// The buyer complains about the shop of one of their orders.
pub fn file(
    conn: &mut DbConn,
    me: &SessionUser,
    order_no: &str,
    reason: &str,
    body: &str,
    photos: &[(String, Vec<u8>)],
    now: NaiveDateTime,
) -> Result<i64, AppError> {
    let mut errors = FieldErrors::new();
    if !REASONS.contains(&reason) {
        errors.add("reason", "complaint_reason");
    }
    let body = body.trim();
    if !(10..=1000).contains(&body.chars().count()) {
        errors.add("body", "complaint_body");
    }
    if photos.len() > super::refunds::MAX_PHOTOS {
        errors.add("photos", "refund_photos");
    }
    errors.into_result()?;
    write_tx(conn, |c| {
        let order = own_order(c, me, order_no)?;
        if order.paid_at.is_none() {
            return Err(AppError::Conflict("complaint.unpaid"));
        }
        let mut ids = Vec::new();
        for (ct, bytes) in photos {
            ids.push(accounts::store_private_media(c, me.id, ct, bytes, now)?.to_string());
        }
        let r = diesel::insert_into(complaints::table)
            .values((
                complaints::shop_id.eq(order.shop_id),
                complaints::buyer_id.eq(me.id),
                complaints::order_id.eq(Some(order.id)),
                complaints::reason.eq(reason),
                complaints::body.eq(body),
                complaints::evidence_media_ids.eq(ids.join(",")),
                complaints::status.eq("open"),
                complaints::created_at.eq(now),
            ))
            .execute(c);
        match r {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(AppError::Conflict("complaint.already_open"))
            }
            Err(e) => return Err(e.into()),
        }
        Ok(complaints::table
            .filter(complaints::order_id.eq(order.id))
            .order(complaints::id.desc())
            .select(complaints::id)
            .first(c)?)
    })
}

type Row = (Complaint, String, String, Option<String>);

/// Complaints joined with their shop, buyer and order.
macro_rules! rows_query {
    () => {
        complaints::table
            .inner_join(shops::table)
            .inner_join(users::table.on(users::id.eq(complaints::buyer_id)))
            .left_join(orders::table.on(orders::id.nullable().eq(complaints::order_id)))
    };
}

fn to_rows(rows: Vec<Row>) -> Vec<ComplaintRow> {
    rows.into_iter()
        .map(|(complaint, shop_name, buyer, order_no)| ComplaintRow {
            complaint,
            shop_name,
            buyer,
            order_no,
        })
        .collect()
}

/// Complaints about the merchant's shop, newest first.
pub fn shop_list(
    conn: &mut DbConn,
    me: &SessionUser,
    page: PageQuery,
) -> Result<Paginated<ComplaintRow>, AppError> {
    let m = require_shop_role(conn, me, ShopRole::CustomerService)?;
    let total: i64 = complaints::table
        .filter(complaints::shop_id.eq(m.shop.id))
        .count()
        .get_result(conn)?;
    let rows: Vec<Row> = rows_query!()
        .filter(complaints::shop_id.eq(m.shop.id))
        .order(complaints::id.desc())
        .limit(super::service::PER_PAGE)
        .offset(page.offset(super::service::PER_PAGE))
        .select((
            Complaint::as_select(),
            shops::name,
            users::handle,
            orders::order_no.nullable(),
        ))
        .load(conn)?;
    Ok(Paginated {
        items: to_rows(rows),
        page: page.number(),
        per_page: super::service::PER_PAGE,
        total,
    })
}

/// The shop answers a complaint once.
pub fn reply(
    conn: &mut DbConn,
    me: &SessionUser,
    id: i64,
    text: &str,
    now: NaiveDateTime,
) -> Result<(), AppError> {
    let text = text.trim();
    if !(4..=1000).contains(&text.chars().count()) {
        return Err(AppError::field("reply", "complaint_reply"));
    }
    let m = require_shop_role(conn, me, ShopRole::CustomerService)?;
    write_tx(conn, |c| {
        let n = diesel::update(
            complaints::table
                .find(id)
                .filter(complaints::shop_id.eq(m.shop.id))
                .filter(complaints::merchant_reply.eq("")),
        )
        .set((
            complaints::merchant_reply.eq(text),
            complaints::replied_at.eq(Some(now)),
        ))
        .execute(c)?;
        if n == 1 {
            return Ok(());
        }
        let mine: i64 = complaints::table
            .find(id)
            .filter(complaints::shop_id.eq(m.shop.id))
            .count()
            .get_result(c)?;
        Err(if mine == 0 {
            AppError::NotFound
        } else {
            AppError::Conflict("complaint.replied")
        })
    })
}

fn require_moderator(me: &SessionUser) -> Result<(), AppError> {
    if me.has_role(Role::Moderator) {
        Ok(())
    } else {
        Err(AppError::Forbidden("error.403.body"))
    }
}

/// The moderators' queue: open complaints oldest first, or all of one status.
pub fn queue(
    conn: &mut DbConn,
    me: &SessionUser,
    open_only: bool,
    page: PageQuery,
) -> Result<Paginated<ComplaintRow>, AppError> {
    require_moderator(me)?;
    let status = if open_only { "open" } else { "ruled" };
    let total: i64 = complaints::table
        .filter(complaints::status.eq(status))
        .count()
        .get_result(conn)?;
    // Open ones oldest first (the queue), ruled ones newest first (the record).
    let mut q = rows_query!()
        .filter(complaints::status.eq(status))
        .into_boxed();
    q = if open_only {
        q.order(complaints::id.asc())
    } else {
        q.order(complaints::id.desc())
    };
    let rows: Vec<Row> = q
        .limit(super::service::PER_PAGE)
        .offset(page.offset(super::service::PER_PAGE))
        .select((
            Complaint::as_select(),
            shops::name,
            users::handle,
            orders::order_no.nullable(),
        ))
        .load(conn)?;
    Ok(Paginated {
        items: to_rows(rows),
        page: page.number(),
        per_page: super::service::PER_PAGE,
        total,
    })
}

/// A moderator rules: the merchant was at fault or not, with a note. Compare-and-set on the
/// open status (a second ruling gets 409), one audit row, an email to both sides.
pub fn rule(
    conn: &mut DbConn,
    me: &SessionUser,
    id: i64,
    at_fault: bool,
    note: &str,
    now: NaiveDateTime,
) -> Result<(), AppError> {
    require_moderator(me)?;
    let note = note.trim();
    if !(4..=1000).contains(&note.chars().count()) {
        return Err(AppError::field("note", "ruling_note"));
    }
    write_tx(conn, |c| {
        let (shop_id, buyer_id, owner): (i64, i64, i64) = complaints::table
            .inner_join(shops::table)
            .filter(complaints::id.eq(id))
            .select((
                complaints::shop_id,
                complaints::buyer_id,
                shops::official_user_id,
            ))
            .first(c)
            .optional()?
            .ok_or(AppError::NotFound)?;
        let n = diesel::update(
            complaints::table
                .find(id)
                .filter(complaints::status.eq("open")),
        )
        .set((
            complaints::status.eq("ruled"),
            complaints::merchant_at_fault.eq(Some(at_fault)),
            complaints::ruling_note.eq(note),
            complaints::ruled_by.eq(Some(me.id)),
            complaints::ruled_at.eq(Some(now)),
        ))
        .execute(c)?;
        if n == 0 {
            return Err(AppError::Conflict("complaint.ruled"));
        }
        let verdict = if at_fault { "at_fault" } else { "not_at_fault" };
        accounts::audit_shop(
            c,
            Some(me.id),
            &format!("complaint.{verdict}"),
            "complaint",
            Some(id),
            Some(shop_id),
            note,
        )?;
        for user in [owner, buyer_id] {
            let (email, _, l) = user_mail(c, user)?;
            let v = i18n::t(l, &format!("complaint.verdict.{verdict}")).into_owned();
            mail::enqueue(
                c,
                &Outgoing {
                    to: &email,
                    kind: "complaint_ruled",
                    subject: i18n::tf(l, "mail.complaint.subject", &[("id", &id.to_string())]),
                    body: i18n::tf(
                        l,
                        "mail.complaint.body",
                        &[("id", &id.to_string()), ("verdict", &v), ("note", note)],
                    ),
                },
            )?;
        }
        Ok(())
    })
}

/// The complaints filed about one order (its page shows them to buyer and shop).
pub fn of_order(conn: &mut DbConn, order_id: i64) -> Result<Vec<Complaint>, AppError> {
    Ok(complaints::table
        .filter(complaints::order_id.eq(order_id))
        .order(complaints::id.desc())
        .select(Complaint::as_select())
        .load(conn)?)
}
