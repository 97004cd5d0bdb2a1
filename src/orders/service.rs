//! Order use cases: cart, address book, checkout (idempotent, never oversells), payment
//! callbacks, and every state transition of an order as a named function with a
//! compare-and-set update and a timeline row. A buyer reaches only their own orders and a
//! merchant only their shop's: anything else is "not found".

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use rand::Rng;
use serde::Deserialize;

use super::model::{Address, Order, OrderEvent, OrderLine, OrderStatus};
use crate::accounts::SessionUser;
use crate::db::fixed::{Arg, Fixed, FixedSql};
use crate::db::schema::{
    addresses, cart_items, checkouts, order_events, order_lines, orders, payment_events, payments,
    products, refunds, shops, skus, users,
};
use crate::db::{like_pattern, write_tx, DbConn};
use crate::error::{AppError, FieldErrors};
use crate::i18n::{self, Locale};
use crate::mail::{self, Outgoing};
use crate::pagination::{PageQuery, Paginated};
use crate::shops::model::{ShopRole, ShopStatus};
use crate::shops::service::require_shop_role;

pub const PER_PAGE: i64 = 20;
/// Most units of one SKU in a cart line.
pub const MAX_QTY: i64 = 99;
/// Most lines in a cart.
pub const MAX_CART_LINES: i64 = 100;
/// Most addresses one account keeps.
pub const MAX_ADDRESSES: i64 = 20;

// ---------- cart ----------

/// The cart key of a request: the account's, else the visitor's.
pub fn cart_owner(user: Option<&SessionUser>, visitor: &str) -> Option<String> {
    match user {
        Some(u) => Some(format!("u{}", u.id)),
        None => visitor_owner(visitor),
    }
}

/// The cart key of an anonymous visitor (none without a well-formed visitor id).
fn visitor_owner(visitor: &str) -> Option<String> {
    (visitor.len() == 64).then(|| format!("v{visitor}"))
}

/// Moves an anonymous visitor's cart into the account's (quantities add up, capped).
pub fn merge_visitor_cart(
    conn: &mut DbConn,
    user_id: i64,
    visitor: &str,
    now: NaiveDateTime,
) -> Result<(), AppError> {
    let Some(from) = visitor_owner(visitor) else {
        return Ok(());
    };
    let to = format!("u{user_id}");
    let rows: Vec<(i64, i64)> = cart_items::table
        .filter(cart_items::owner.eq(&from))
        .select((cart_items::sku_id, cart_items::quantity))
        .load(conn)?;
    if rows.is_empty() {
        return Ok(());
    }
    write_tx(conn, |c| {
        for (sku, qty) in &rows {
            upsert_line(c, &to, *sku, *qty, now)?;
        }
        diesel::delete(cart_items::table.filter(cart_items::owner.eq(&from))).execute(c)?;
        Ok(())
    })
}

/// The conflict clause of the cart upserts: quantities add up, capped (the cap is bound next).
macro_rules! capped_sum {
    () => {
        " ON CONFLICT (owner, sku_id) DO UPDATE SET quantity = CASE \
         WHEN cart_items.quantity + excluded.quantity > "
    };
}

/// The cart upsert of [`upsert_line`].
struct UpsertLine;
impl FixedSql for UpsertLine {
    const PIECES: &'static [&'static str] = &[
        "INSERT INTO cart_items (owner, sku_id, quantity, added_at) VALUES (",
        ", ",
        ", ",
        ", ",
        concat!(")", capped_sum!()),
        " THEN ",
        " ELSE cart_items.quantity + excluded.quantity END",
    ];
}

/// Takes stock only when there is enough: (quantity, SKU id, quantity).
struct TakeStock;
impl FixedSql for TakeStock {
    const PIECES: &'static [&'static str] = &[
        "UPDATE skus SET stock = stock - ",
        " WHERE id = ",
        " AND stock >= ",
        "",
    ];
}

fn upsert_line(
    c: &mut DbConn,
    owner: &str,
    sku_id: i64,
    qty: i64,
    now: NaiveDateTime,
) -> Result<(), AppError> {
    let qty = qty.clamp(0, MAX_QTY);
    // One statement: a new line, or the quantities added up and capped at MAX_QTY.
    let upsert = Fixed::<UpsertLine>::new(vec![
        Arg::Text(owner.to_string()),
        Arg::Int(sku_id),
        Arg::Int(qty),
        Arg::Time(now),
        Arg::Int(MAX_QTY),
        Arg::Int(MAX_QTY),
    ]);
    crate::per_backend!(c, |c| upsert.execute(c))?;
    Ok(())
}

/// The cart add of [`cart_add`] as one statement: the line goes in (or its quantity adds up,
/// capped) only when the SKU is listed, in stock, its shop may sell, and the cart has room
/// for a new line (or already holds this one). (owner, quantity, time, SKU, time, owner,
/// lines cap, owner, SKU, quantity cap, quantity cap.)
struct AddLine;
impl FixedSql for AddLine {
    const PIECES: &'static [&'static str] = &[
        "INSERT INTO cart_items (owner, sku_id, quantity, added_at) SELECT ",
        ", s.id, ",
        ", ",
        " FROM skus s INNER JOIN products p ON p.id = s.product_id \
         INNER JOIN shops h ON h.id = p.shop_id WHERE s.id = ",
        " AND p.status = 'listed' AND s.stock >= 1 AND h.status <> 'cleared' \
         AND (h.status <> 'suspended' OR h.restricted_until <= ",
        ") AND ((SELECT COUNT(*) FROM cart_items WHERE owner = ",
        ") < ",
        " OR EXISTS (SELECT 1 FROM cart_items WHERE owner = ",
        concat!(" AND sku_id = s.id))", capped_sum!()),
        " THEN ",
        " ELSE cart_items.quantity + excluded.quantity END",
    ];
}

/// Puts `qty` of a listed SKU into the cart (adding to what is there). One statement when it
/// goes in (on PostgreSQL one round trip, no transaction around it); only when nothing went in
/// is the SKU read again to say why.
pub fn cart_add(
    conn: &mut DbConn,
    owner: &str,
    sku_id: i64,
    qty: i64,
    now: NaiveDateTime,
) -> Result<(), AppError> {
    if !(1..=MAX_QTY).contains(&qty) {
        return Err(AppError::field("quantity", "quantity_range"));
    }
    let add = Fixed::<AddLine>::new(vec![
        Arg::Text(owner.to_string()),
        Arg::Int(qty),
        Arg::Time(now),
        Arg::Int(sku_id),
        Arg::Time(now),
        Arg::Text(owner.to_string()),
        Arg::Int(MAX_CART_LINES),
        Arg::Text(owner.to_string()),
        Arg::Int(MAX_QTY),
        Arg::Int(MAX_QTY),
    ]);
    if crate::per_backend!(conn, |c| add.execute(c))? == 1 {
        return Ok(());
    }
    let found: Option<(String, String, Option<NaiveDateTime>, i64)> = skus::table
        .inner_join(products::table.inner_join(shops::table))
        .filter(skus::id.eq(sku_id))
        .select((
            products::status,
            shops::status,
            shops::restricted_until,
            skus::stock,
        ))
        .first(conn)
        .optional()?;
    let Some((pstatus, sstatus, until, stock)) = found else {
        return Err(AppError::NotFound);
    };
    if pstatus != "listed" {
        return Err(AppError::NotFound);
    }
    if !ShopStatus::at(&sstatus, until, now).can_sell() {
        return Err(AppError::Conflict("cart.shop_unavailable"));
    }
    if stock < 1 {
        return Err(AppError::Conflict("cart.sold_out"));
    }
    Err(AppError::Conflict("cart.full"))
}

/// Sets a line's quantity; 0 removes it.
pub fn cart_set(conn: &mut DbConn, owner: &str, sku_id: i64, qty: i64) -> Result<(), AppError> {
    if !(0..=MAX_QTY).contains(&qty) {
        return Err(AppError::field("quantity", "quantity_range"));
    }
    let target = cart_items::table
        .filter(cart_items::owner.eq(owner))
        .filter(cart_items::sku_id.eq(sku_id));
    let n = write_tx(conn, |c| {
        if qty == 0 {
            diesel::delete(target).execute(c)
        } else {
            diesel::update(target)
                .set(cart_items::quantity.eq(qty))
                .execute(c)
        }
    })?;
    if n == 0 {
        return Err(AppError::NotFound);
    }
    Ok(())
}

/// Why a cart line can not be bought now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineProblem {
    /// The product is no longer listed.
    Unlisted,
    /// The shop may not sell (suspended, cleared).
    ShopUnavailable,
    /// Fewer in stock than the line asks for.
    NotEnoughStock,
}

impl LineProblem {
    pub fn key(self) -> &'static str {
        match self {
            LineProblem::Unlisted => "cart.problem.unlisted",
            LineProblem::ShopUnavailable => "cart.problem.shop",
            LineProblem::NotEnoughStock => "cart.problem.stock",
        }
    }
}

#[derive(Debug, Clone)]
pub struct CartLine {
    pub sku_id: i64,
    pub product_id: i64,
    pub title: String,
    pub sku_label: String,
    pub cover_media_id: Option<i64>,
    pub price_fen: i64,
    pub quantity: i64,
    pub stock: i64,
    pub problem: Option<LineProblem>,
}

impl CartLine {
    pub fn amount(&self) -> i64 {
        self.price_fen * self.quantity
    }
}

#[derive(Debug, Clone)]
pub struct CartGroup {
    pub shop_id: i64,
    pub shop_name: String,
    pub shop_slug: String,
    pub lines: Vec<CartLine>,
}

impl CartGroup {
    /// What the buyable lines of this shop cost.
    pub fn subtotal(&self) -> i64 {
        self.lines
            .iter()
            .filter(|l| l.problem.is_none())
            .map(CartLine::amount)
            .sum()
    }
    pub fn buyable(&self) -> bool {
        self.lines.iter().any(|l| l.problem.is_none())
    }
}

#[derive(Debug, Clone, Default)]
pub struct Cart {
    pub groups: Vec<CartGroup>,
}

impl Cart {
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
    pub fn total(&self) -> i64 {
        self.groups.iter().map(CartGroup::subtotal).sum()
    }
    pub fn buyable_count(&self) -> usize {
        self.groups
            .iter()
            .flat_map(|g| &g.lines)
            .filter(|l| l.problem.is_none())
            .count()
    }
    pub fn has_problems(&self) -> bool {
        self.groups
            .iter()
            .flat_map(|g| &g.lines)
            .any(|l| l.problem.is_some())
    }
}

type CartRow = (
    i64,
    i64,
    String,
    String,
    Option<i64>,
    i64,
    i64,
    i64,
    String,
    i64,
    String,
    String,
    String,
    Option<NaiveDateTime>,
);

/// The cart with current prices and stock, grouped by shop; lines that can not be bought are
/// flagged with the reason.
pub fn cart(conn: &mut DbConn, owner: &str, now: NaiveDateTime) -> Result<Cart, AppError> {
    let rows: Vec<CartRow> = cart_items::table
        .inner_join(skus::table.inner_join(products::table.inner_join(shops::table)))
        .filter(cart_items::owner.eq(owner))
        .order((shops::id, cart_items::added_at, cart_items::sku_id))
        .select((
            skus::id,
            products::id,
            products::title,
            skus::attrs,
            products::cover_media_id,
            skus::price_fen,
            cart_items::quantity,
            skus::stock,
            products::status,
            shops::id,
            shops::name,
            shops::slug,
            shops::status,
            shops::restricted_until,
        ))
        .load(conn)?;
    let mut groups: Vec<CartGroup> = Vec::new();
    for (sku, pid, title, attrs, cover, price, qty, stock, pstatus, sid, sname, slug, ss, until) in
        rows
    {
        let problem = if pstatus != "listed" {
            Some(LineProblem::Unlisted)
        } else if !ShopStatus::at(&ss, until, now).can_sell() {
            Some(LineProblem::ShopUnavailable)
        } else if stock < qty {
            Some(LineProblem::NotEnoughStock)
        } else {
            None
        };
        let line = CartLine {
            sku_id: sku,
            product_id: pid,
            title,
            sku_label: crate::catalog::model::variant_label(&attrs),
            cover_media_id: cover,
            price_fen: price,
            quantity: qty,
            stock,
            problem,
        };
        match groups.last_mut() {
            Some(g) if g.shop_id == sid => g.lines.push(line),
            _ => groups.push(CartGroup {
                shop_id: sid,
                shop_name: sname,
                shop_slug: slug,
                lines: vec![line],
            }),
        }
    }
    Ok(Cart { groups })
}

// ---------- addresses ----------

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct AddressForm {
    pub recipient: String,
    pub phone: String,
    pub province: String,
    pub city: String,
    pub district: String,
    pub detail: String,
    pub make_default: Option<String>,
}

/// A mainland mobile number: 11 digits starting 1[3-9].
pub fn phone_ok(p: &str) -> bool {
    let b = p.as_bytes();
    b.len() == 11
        && b[0] == b'1'
        && (b'3'..=b'9').contains(&b[1])
        && b.iter().all(u8::is_ascii_digit)
}

fn check_address(f: &AddressForm) -> Result<AddressForm, AppError> {
    let mut errors = FieldErrors::new();
    let trimmed = AddressForm {
        recipient: f.recipient.trim().to_string(),
        phone: f.phone.trim().replace([' ', '-'], ""),
        province: f.province.trim().to_string(),
        city: f.city.trim().to_string(),
        district: f.district.trim().to_string(),
        detail: f.detail.trim().to_string(),
        make_default: f.make_default.clone(),
    };
    let len = |s: &str| s.chars().count();
    let has_control = |s: &str| s.chars().any(char::is_control);
    for (field, v, min, max) in [
        ("recipient", &trimmed.recipient, 1, 20),
        ("province", &trimmed.province, 2, 20),
        ("city", &trimmed.city, 2, 20),
        ("district", &trimmed.district, 2, 20),
        ("detail", &trimmed.detail, 4, 120),
    ] {
        if len(v) < min || len(v) > max || has_control(v) {
            errors.add(field, &format!("address_{field}"));
        }
    }
    if !phone_ok(&trimmed.phone) {
        errors.add("phone", "address_phone");
    }
    errors.into_result()?;
    Ok(trimmed)
}

pub fn addresses_of(conn: &mut DbConn, user_id: i64) -> Result<Vec<Address>, AppError> {
    Ok(addresses::table
        .filter(addresses::user_id.eq(user_id))
        .order((addresses::is_default.desc(), addresses::id.desc()))
        .select(Address::as_select())
        .load(conn)?)
}

/// Adds an address; the first one (or one marked so) becomes the default.
pub fn add_address(
    conn: &mut DbConn,
    me: &SessionUser,
    form: &AddressForm,
    now: NaiveDateTime,
) -> Result<i64, AppError> {
    let f = check_address(form)?;
    write_tx(conn, |c| {
        let count: i64 = addresses::table
            .filter(addresses::user_id.eq(me.id))
            .count()
            .get_result(c)?;
        if count >= MAX_ADDRESSES {
            return Err(AppError::Conflict("address.too_many"));
        }
        let make_default = count == 0 || f.make_default.is_some();
        if make_default {
            diesel::update(addresses::table.filter(addresses::user_id.eq(me.id)))
                .set(addresses::is_default.eq(false))
                .execute(c)?;
        }
        diesel::insert_into(addresses::table)
            .values((
                addresses::user_id.eq(me.id),
                addresses::recipient.eq(&f.recipient),
                addresses::phone.eq(&f.phone),
                addresses::province.eq(&f.province),
                addresses::city.eq(&f.city),
                addresses::district.eq(&f.district),
                addresses::detail.eq(&f.detail),
                addresses::is_default.eq(make_default),
                addresses::created_at.eq(now),
            ))
            .execute(c)?;
        Ok(addresses::table
            .filter(addresses::user_id.eq(me.id))
            .order(addresses::id.desc())
            .select(addresses::id)
            .first(c)?)
    })
}

pub fn delete_address(conn: &mut DbConn, me: &SessionUser, id: i64) -> Result<(), AppError> {
    write_tx(conn, |c| {
        let n = diesel::delete(
            addresses::table
                .filter(addresses::id.eq(id))
                .filter(addresses::user_id.eq(me.id)),
        )
        .execute(c)?;
        if n == 0 {
            return Err(AppError::NotFound);
        }
        // Keep a default while any address is left.
        let has_default: i64 = addresses::table
            .filter(addresses::user_id.eq(me.id))
            .filter(addresses::is_default.eq(true))
            .count()
            .get_result(c)?;
        if has_default == 0 {
            let newest: Option<i64> = addresses::table
                .filter(addresses::user_id.eq(me.id))
                .order(addresses::id.desc())
                .select(addresses::id)
                .first(c)
                .optional()?;
            if let Some(n) = newest {
                diesel::update(addresses::table.find(n))
                    .set(addresses::is_default.eq(true))
                    .execute(c)?;
            }
        }
        Ok(())
    })
}

pub fn set_default_address(conn: &mut DbConn, me: &SessionUser, id: i64) -> Result<(), AppError> {
    write_tx(conn, |c| {
        let mine: i64 = addresses::table
            .filter(addresses::id.eq(id))
            .filter(addresses::user_id.eq(me.id))
            .count()
            .get_result(c)?;
        if mine == 0 {
            return Err(AppError::NotFound);
        }
        diesel::update(addresses::table.filter(addresses::user_id.eq(me.id)))
            .set(addresses::is_default.eq(addresses::id.eq(id)))
            .execute(c)?;
        Ok(())
    })
}

// ---------- checkout ----------

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct CheckoutForm {
    /// The idempotency key the checkout page generated.
    pub key: String,
    pub address_id: Option<i64>,
    /// The total the buyer was shown, in 分: a different total now means prices changed.
    pub expected_total: Option<i64>,
    pub note: String,
}

/// A new idempotency key for a checkout form.
pub fn new_checkout_key() -> String {
    crate::accounts::session::random_token()[..32].to_string()
}

fn key_ok(k: &str) -> bool {
    (16..=64).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A human-readable order number: date (platform UTC) and ten random digits.
fn order_no(now: NaiveDateTime) -> String {
    let n: u64 = rand::thread_rng().gen_range(0..10_000_000_000);
    format!("{}{n:010}", now.format("%y%m%d"))
}

/// Places the buyable lines of the buyer's cart as one order per shop. The key makes it
/// idempotent: the same key again (even concurrently) returns the checkout it created. Stock
/// is taken with one conditional update per SKU in id order inside the transaction; when any
/// SKU runs short the whole checkout rolls back and `ConflictOn` names those SKUs.
/// Returns the checkout id.
pub fn checkout(
    conn: &mut DbConn,
    me: &SessionUser,
    form: &CheckoutForm,
    now: NaiveDateTime,
    pay_minutes: i64,
) -> Result<i64, AppError> {
    if !key_ok(&form.key) {
        return Err(AppError::BadRequest("checkout.bad_key"));
    }
    let note: String = form.note.trim().chars().take(200).collect();
    let owner = format!("u{}", me.id);
    write_tx(conn, |c| {
        let cart = cart(c, &owner, now)?;
        // Lines that can not be bought for other reasons than stock stay in the cart.
        let mut buy: Vec<(i64, &CartLine)> = Vec::new();
        for g in &cart.groups {
            for l in &g.lines {
                if matches!(l.problem, None | Some(LineProblem::NotEnoughStock)) {
                    buy.push((g.shop_id, l));
                }
            }
        }
        let total: i64 = buy.iter().map(|(_, l)| l.amount()).sum();
        // Then the key, with the total (no separate UPDATE later): a second request with it
        // waits here for the first to finish, then inserts nothing and returns the checkout
        // the first one made, before any check of a cart the first one has emptied.
        let inserted: Option<i64> =
            crate::per_backend!(c, |c| diesel::insert_into(checkouts::table)
                .values((
                    checkouts::buyer_id.eq(me.id),
                    checkouts::idem_key.eq(&form.key),
                    checkouts::total_fen.eq(total),
                    checkouts::created_at.eq(now),
                ))
                .on_conflict_do_nothing()
                .returning(checkouts::id)
                .get_result(c)
                .optional())?;
        let Some(checkout_id) = inserted else {
            return Ok(checkouts::table
                .filter(checkouts::buyer_id.eq(me.id))
                .filter(checkouts::idem_key.eq(&form.key))
                .select(checkouts::id)
                .first(c)?);
        };
        let addr_id = form
            .address_id
            .ok_or_else(|| AppError::field("address_id", "address_required"))?;
        let addr: Address = addresses::table
            .filter(addresses::id.eq(addr_id))
            .filter(addresses::user_id.eq(me.id))
            .select(Address::as_select())
            .first(c)
            .optional()?
            .ok_or_else(|| AppError::field("address_id", "address_required"))?;
        if buy.is_empty() {
            return Err(AppError::Conflict("checkout.nothing_to_buy"));
        }
        if form.expected_total.is_some_and(|t| t != total) {
            return Err(AppError::Conflict("checkout.prices_changed"));
        }
        let deadline = now + Duration::minutes(pay_minutes);
        let region = format!("{} {} {}", addr.province, addr.city, addr.district);
        let mut per_shop: BTreeMap<i64, Vec<&CartLine>> = BTreeMap::new();
        for (shop, l) in &buy {
            per_shop.entry(*shop).or_default().push(l);
        }
        for (shop_id, lines) in &per_shop {
            let items: i64 = lines.iter().map(|l| l.amount()).sum();
            // Order numbers are random (they reveal no volumes); a rare clash with an
            // existing number inserts nothing (no error, so the transaction stays usable on
            // PostgreSQL without a savepoint) and is tried again with another number.
            let mut order_id = None;
            for _ in 0..6 {
                order_id = crate::per_backend!(c, |c| diesel::insert_into(orders::table)
                    .values((
                        orders::order_no.eq(order_no(now)),
                        orders::checkout_id.eq(checkout_id),
                        orders::buyer_id.eq(me.id),
                        orders::shop_id.eq(shop_id),
                        orders::status.eq(OrderStatus::PendingPayment.as_str()),
                        orders::items_fen.eq(items),
                        orders::shipping_fen.eq(0i64),
                        orders::total_fen.eq(items),
                        orders::recipient.eq(&addr.recipient),
                        orders::phone.eq(&addr.phone),
                        orders::region.eq(&region),
                        orders::address_detail.eq(&addr.detail),
                        orders::buyer_note.eq(&note),
                        orders::created_at.eq(now),
                        orders::pay_deadline.eq(deadline),
                        orders::updated_at.eq(now),
                    ))
                    .on_conflict(orders::order_no)
                    .do_nothing()
                    .returning(orders::id)
                    .get_result::<i64>(c)
                    .optional())?;
                if order_id.is_some() {
                    break;
                }
            }
            let order_id = order_id
                .ok_or_else(|| AppError::Internal("no free order number in 6 tries".into()))?;
            for l in lines {
                diesel::insert_into(order_lines::table)
                    .values((
                        order_lines::order_id.eq(order_id),
                        order_lines::sku_id.eq(l.sku_id),
                        order_lines::product_id.eq(l.product_id),
                        order_lines::title.eq(&l.title),
                        order_lines::sku_label.eq(&l.sku_label),
                        order_lines::cover_media_id.eq(l.cover_media_id),
                        order_lines::price_fen.eq(l.price_fen),
                        order_lines::quantity.eq(l.quantity),
                    ))
                    .execute(c)?;
            }
            event(c, order_id, "created", Some(me.id), "", now)?;
        }
        // The bought lines leave the cart. PostgreSQL: the SKU ids as one array parameter
        // (`= ANY($2)`, prepared once); a join back through this checkout's orders was planned
        // once per connection, and on a young database (tables still empty when the plan was
        // made) that plan scanned every order: it held the hot-SKU benchmark at ~280 orders/s,
        // against ~530 once the statistics had caught up. SQLite: the sub-select (an IN list
        // would be prepared again for every length), planned by index, not by statistics.
        let bought: Vec<i64> = buy.iter().map(|(_, l)| l.sku_id).collect();
        let mine = cart_items::table.filter(cart_items::owner.eq(&owner));
        match c {
            DbConn::Postgres(pg) => {
                diesel::delete(mine.filter(cart_items::sku_id.eq_any(&bought))).execute(pg)?
            }
            _ => diesel::delete(
                mine.filter(
                    cart_items::sku_id.eq_any(
                        order_lines::table
                            .inner_join(orders::table)
                            .filter(orders::checkout_id.eq(checkout_id))
                            .select(order_lines::sku_id),
                    ),
                ),
            )
            .execute(c)?,
        };
        // Stock last, so that on PostgreSQL a SKU's row lock is held only from here to the
        // commit (a hot SKU's buyers queue on it): one conditional update per SKU, in id
        // order (no deadlocks between checkouts). Any SKU short rolls everything back.
        let mut by_sku: Vec<&CartLine> = buy.iter().map(|(_, l)| *l).collect();
        by_sku.sort_by_key(|l| l.sku_id);
        let mut short = Vec::new();
        for l in &by_sku {
            let take = Fixed::<TakeStock>::new(vec![
                Arg::Int(l.quantity),
                Arg::Int(l.sku_id),
                Arg::Int(l.quantity),
            ]);
            let n = crate::per_backend!(c, |c| take.execute(c))?;
            if n == 0 {
                short.push(l.sku_id);
            }
        }
        if !short.is_empty() {
            return Err(AppError::ConflictOn("checkout.sold_out", short));
        }
        Ok(checkout_id)
    })
}

/// The orders of one of the buyer's checkouts.
pub fn checkout_orders(
    conn: &mut DbConn,
    me: &SessionUser,
    checkout_id: i64,
) -> Result<Vec<OrderSummary>, AppError> {
    let rows: Vec<(Order, String)> = orders::table
        .inner_join(shops::table)
        .filter(orders::checkout_id.eq(checkout_id))
        .filter(orders::buyer_id.eq(me.id))
        .order(orders::id)
        .select((Order::as_select(), shops::name))
        .load(conn)?;
    let list = summaries(conn, rows)?;
    if list.is_empty() {
        return Err(AppError::NotFound);
    }
    Ok(list)
}

pub(super) fn event(
    c: &mut DbConn,
    order_id: i64,
    kind: &str,
    actor: Option<i64>,
    note: &str,
    now: NaiveDateTime,
) -> Result<(), AppError> {
    diesel::insert_into(order_events::table)
        .values((
            order_events::order_id.eq(order_id),
            order_events::kind.eq(kind),
            order_events::actor_user_id.eq(actor),
            order_events::note.eq(note),
            order_events::created_at.eq(now),
        ))
        .execute(c)?;
    Ok(())
}

// ---------- reading orders ----------

/// An order in a list, with its shop and lines.
#[derive(Debug, Clone)]
pub struct OrderSummary {
    pub order: Order,
    /// Who is on the other side: the shop's name in the buyer's lists, the buyer's handle in
    /// the merchant's.
    pub party: String,
    pub lines: Vec<OrderLine>,
}

fn summaries(c: &mut DbConn, rows: Vec<(Order, String)>) -> Result<Vec<OrderSummary>, AppError> {
    let ids: Vec<i64> = rows.iter().map(|(o, _)| o.id).collect();
    let mut lines: BTreeMap<i64, Vec<OrderLine>> = BTreeMap::new();
    if !ids.is_empty() {
        for l in order_lines::table
            .filter(order_lines::order_id.eq_any(&ids))
            .order(order_lines::id)
            .select(OrderLine::as_select())
            .load(c)?
        {
            lines.entry(l.order_id).or_default().push(l);
        }
    }
    Ok(rows
        .into_iter()
        .map(|(order, party)| OrderSummary {
            lines: lines.remove(&order.id).unwrap_or_default(),
            order,
            party,
        })
        .collect())
}

/// The buyer's orders, newest first, optionally of one status.
pub fn buyer_orders(
    conn: &mut DbConn,
    me: &SessionUser,
    status: Option<OrderStatus>,
    page: PageQuery,
) -> Result<Paginated<OrderSummary>, AppError> {
    let filtered = || {
        let mut q = orders::table
            .filter(orders::buyer_id.eq(me.id))
            .into_boxed();
        if let Some(s) = status {
            q = q.filter(orders::status.eq(s.as_str()));
        }
        q
    };
    let total: i64 = filtered().count().get_result(conn)?;
    let rows: Vec<(Order, String)> = filtered()
        .inner_join(shops::table)
        .order(orders::id.desc())
        .limit(PER_PAGE)
        .offset(page.offset(PER_PAGE))
        .select((Order::as_select(), shops::name))
        .load(conn)?;
    Ok(Paginated {
        items: summaries(conn, rows)?,
        page: page.number(),
        per_page: PER_PAGE,
        total,
    })
}

/// One order with everything its page shows.
#[derive(Debug, Clone)]
pub struct OrderDetail {
    pub order: Order,
    /// Refund requests, newest first.
    pub refunds: Vec<super::refunds::Refund>,
    /// Complaints filed about the order, newest first.
    pub complaints: Vec<super::complaints::Complaint>,
    pub shop_name: String,
    pub shop_slug: String,
    pub buyer_handle: String,
    pub lines: Vec<OrderLine>,
    pub events: Vec<OrderEvent>,
}

fn detail(c: &mut DbConn, order: Order) -> Result<OrderDetail, AppError> {
    let (shop_name, shop_slug): (String, String) = shops::table
        .find(order.shop_id)
        .select((shops::name, shops::slug))
        .first(c)?;
    let buyer_handle: String = users::table
        .find(order.buyer_id)
        .select(users::handle)
        .first(c)?;
    let lines = order_lines::table
        .filter(order_lines::order_id.eq(order.id))
        .order(order_lines::id)
        .select(OrderLine::as_select())
        .load(c)?;
    let events = order_events::table
        .filter(order_events::order_id.eq(order.id))
        .order(order_events::id)
        .select(OrderEvent::as_select())
        .load(c)?;
    let refunds = super::refunds::of_order(c, order.id)?;
    let complaints = super::complaints::of_order(c, order.id)?;
    Ok(OrderDetail {
        refunds,
        complaints,
        order,
        shop_name,
        shop_slug,
        buyer_handle,
        lines,
        events,
    })
}

/// The buyer's own order; another buyer's is "not found".
pub fn buyer_order(
    conn: &mut DbConn,
    me: &SessionUser,
    order_no: &str,
) -> Result<OrderDetail, AppError> {
    let order = own_order(conn, me, order_no)?;
    detail(conn, order)
}

pub(super) fn own_order(
    c: &mut DbConn,
    me: &SessionUser,
    order_no: &str,
) -> Result<Order, AppError> {
    orders::table
        .filter(orders::order_no.eq(order_no))
        .filter(orders::buyer_id.eq(me.id))
        .select(Order::as_select())
        .first(c)
        .optional()?
        .ok_or(AppError::NotFound)
}

pub(super) fn shop_order(c: &mut DbConn, shop_id: i64, order_no: &str) -> Result<Order, AppError> {
    orders::table
        .filter(orders::order_no.eq(order_no))
        .filter(orders::shop_id.eq(shop_id))
        .select(Order::as_select())
        .first(c)
        .optional()?
        .ok_or(AppError::NotFound)
}

/// One of the merchant's shop's orders (customer service or owner); another shop's is "not
/// found".
pub fn merchant_order(
    conn: &mut DbConn,
    me: &SessionUser,
    order_no: &str,
) -> Result<OrderDetail, AppError> {
    let m = require_shop_role(conn, me, ShopRole::CustomerService)?;
    let order = shop_order(conn, m.shop.id, order_no)?;
    detail(conn, order)
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct MerchantFilter {
    pub status: String,
    /// YYYY-MM-DD, inclusive, platform UTC date of the order.
    pub from: String,
    pub to: String,
    pub order_no: String,
    pub buyer: String,
    pub page: Option<i64>,
}

fn parse_day(s: &str) -> Option<NaiveDateTime> {
    chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
}

type Filtered = diesel::dsl::IntoBoxed<
    'static,
    diesel::dsl::InnerJoin<orders::table, users::table>,
    crate::db::MultiBackend,
>;

/// A shop's orders (joined with their buyers) narrowed by the filter.
fn filtered(shop_id: i64, f: &MerchantFilter) -> Filtered {
    let mut q = orders::table
        .inner_join(users::table)
        .filter(orders::shop_id.eq(shop_id))
        .into_boxed();
    if let Some(s) = OrderStatus::parse(&f.status) {
        q = q.filter(orders::status.eq(s.as_str()));
    }
    if let Some(d) = parse_day(&f.from) {
        q = q.filter(orders::created_at.ge(d));
    }
    if let Some(d) = parse_day(&f.to) {
        q = q.filter(orders::created_at.lt(d + Duration::days(1)));
    }
    let no = f.order_no.trim();
    if !no.is_empty() {
        q = q.filter(orders::order_no.like(like_pattern(no)).escape('\\'));
    }
    let buyer = f.buyer.trim().trim_start_matches('@').to_lowercase();
    if !buyer.is_empty() {
        q = q.filter(users::handle.eq(buyer));
    }
    q
}

/// The merchant's orders with filters (status, date range, order number, buyer handle).
pub fn merchant_orders(
    conn: &mut DbConn,
    me: &SessionUser,
    f: &MerchantFilter,
) -> Result<Paginated<OrderSummary>, AppError> {
    let m = require_shop_role(conn, me, ShopRole::CustomerService)?;
    let page = PageQuery { page: f.page };
    let total: i64 = filtered(m.shop.id, f).count().get_result(conn)?;
    let rows: Vec<(Order, String)> = filtered(m.shop.id, f)
        .order(orders::id.desc())
        .limit(PER_PAGE)
        .offset(page.offset(PER_PAGE))
        .select((Order::as_select(), users::handle))
        .load(conn)?;
    Ok(Paginated {
        items: summaries(conn, rows)?,
        page: page.number(),
        per_page: PER_PAGE,
        total,
    })
}

// ---------- order CSV ----------

/// The shop whose orders the caller may export (customer service or owner).
pub fn export_shop(conn: &mut DbConn, me: &SessionUser) -> Result<i64, AppError> {
    Ok(require_shop_role(conn, me, ShopRole::CustomerService)?
        .shop
        .id)
}

pub const CSV_HEADER: [&str; 15] = [
    "order_no",
    "created_at",
    "status",
    "buyer",
    "recipient",
    "phone",
    "region",
    "address",
    "items",
    "total",
    "refunded",
    "carrier",
    "tracking_no",
    "paid_at",
    "shipped_at",
];

/// The CSV header line (with a BOM so spreadsheet apps read UTF-8).
pub fn csv_header() -> Vec<u8> {
    let mut out = b"\xEF\xBB\xBF".to_vec();
    out.extend_from_slice(CSV_HEADER.join(",").as_bytes());
    out.extend_from_slice(b"\r\n");
    out
}

/// One chunk of the export: up to `limit` orders older than `before` (by id, newest first),
/// as CSV lines, and the id to continue from (None when this was the last chunk). Runs one
/// query for the orders and one for their lines, so memory stays bounded by the chunk.
pub fn csv_chunk(
    conn: &mut DbConn,
    shop_id: i64,
    f: &MerchantFilter,
    before: Option<i64>,
    limit: i64,
    tz: chrono_tz::Tz,
) -> Result<(Vec<u8>, Option<i64>), AppError> {
    use chrono::TimeZone;
    let mut q = filtered(shop_id, f);
    if let Some(b) = before {
        q = q.filter(orders::id.lt(b));
    }
    let rows: Vec<(Order, String)> = q
        .order(orders::id.desc())
        .limit(limit)
        .select((Order::as_select(), users::handle))
        .load(conn)?;
    let next = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|(o, _)| o.id))
        .flatten();
    let time = |t: Option<NaiveDateTime>| {
        t.map(|t| {
            tz.from_utc_datetime(&t)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_default()
    };
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    for s in summaries(conn, rows)? {
        let o = &s.order;
        let items: Vec<String> = s
            .lines
            .iter()
            .map(|l| {
                if l.sku_label.is_empty() {
                    format!("{} x{}", l.title, l.quantity)
                } else {
                    format!("{} ({}) x{}", l.title, l.sku_label, l.quantity)
                }
            })
            .collect();
        let safe = crate::catalog::service::csv_safe;
        w.write_record([
            o.order_no.clone(),
            time(Some(o.created_at)),
            o.status.clone(),
            safe(&s.party),
            safe(&o.recipient),
            o.phone.clone(),
            safe(&o.region),
            safe(&o.address_detail),
            safe(&items.join("; ")),
            crate::catalog::model::yuan(o.total_fen),
            crate::catalog::model::yuan(o.refunded_fen),
            o.carrier.clone().unwrap_or_default(),
            o.tracking_no.clone().unwrap_or_default(),
            time(o.paid_at),
            time(o.shipped_at),
        ])
        .map_err(AppError::internal)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| AppError::internal(e.to_string()))?;
    Ok((bytes, next))
}

/// Ships many paid orders from a CSV (columns by header: order_no, carrier, tracking_no).
/// Every row is checked first; when any is bad, all problems come back with their line
/// numbers and nothing is shipped. Otherwise all ship in one transaction.
pub fn ship_csv(
    conn: &mut DbConn,
    me: &SessionUser,
    data: &[u8],
    now: NaiveDateTime,
) -> Result<Result<usize, Vec<crate::catalog::service::CsvError>>, AppError> {
    use crate::catalog::service::CsvError;
    let m = require_shop_role(conn, me, ShopRole::CustomerService)?;
    let bad = CsvError::new;
    let input = match crate::catalog::service::read_csv(
        data,
        &["order_no", "carrier", "tracking_no"],
        &[],
        "csv.missing_ship_columns",
    ) {
        Ok(i) => i,
        Err(e) => return Ok(Err(e)),
    };
    let (c_no, c_carrier, c_tracking) = (
        input.cols[0].unwrap_or(0),
        input.cols[1].unwrap_or(0),
        input.cols[2].unwrap_or(0),
    );
    let mut errors = input.errors;
    let mut ships: Vec<(Order, String, String)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (line, r) in input.rows {
        let get = |c: usize| r.get(c).unwrap_or("");
        let no = get(c_no).trim_start_matches('\'');
        if !seen.insert(no.to_string()) {
            errors.push(bad(line, "csv.duplicate_order", no));
            continue;
        }
        let form = ShipForm {
            carrier: get(c_carrier).to_string(),
            tracking_no: get(c_tracking).to_string(),
        };
        let (carrier, tracking) = match check_ship(&form) {
            Ok(v) => v,
            Err(AppError::Invalid(f)) if f.first("carrier").is_some() => {
                errors.push(bad(line, "validation.carrier_unknown", &form.carrier));
                continue;
            }
            Err(_) => {
                errors.push(bad(line, "validation.tracking_format", &form.tracking_no));
                continue;
            }
        };
        match shop_order(conn, m.shop.id, no) {
            Ok(o) if o.is(OrderStatus::Paid) => ships.push((o, carrier, tracking)),
            Ok(_) => errors.push(bad(line, "order.conflict.ship", no)),
            Err(AppError::NotFound) => errors.push(bad(line, "csv.unknown_order", no)),
            Err(e) => return Err(e),
        }
    }
    if !errors.is_empty() {
        return Ok(Err(errors));
    }
    if ships.is_empty() {
        return Ok(Err(vec![bad(1, "csv.empty", "")]));
    }
    let n = ships.len();
    // All or nothing: a row that changed meanwhile (shipped, refund opened) rolls back all.
    let shipped = write_tx(conn, |c| {
        for (o, carrier, tracking) in &ships {
            ship_order(c, o, carrier, tracking, Some(me.id), now)?;
        }
        Ok::<_, AppError>(())
    });
    match shipped {
        Ok(()) => Ok(Ok(n)),
        Err(AppError::Conflict(k)) => Ok(Err(vec![bad(1, k, "")])),
        Err(e) => Err(e),
    }
}

// ---------- merchant overview ----------

/// A shop's numbers for its dashboard: paid GMV and orders today and over 30 days (platform
/// days), refunds paid back over 30 days, orders waiting to ship, open refund requests, and the
/// daily paid GMV of the last 30 days (oldest first).
#[derive(Debug, Clone, Default)]
pub struct Overview {
    pub today_gmv: i64,
    pub today_orders: i64,
    pub month_gmv: i64,
    pub month_orders: i64,
    pub month_refunds: i64,
    pub month_refunded: i64,
    pub to_ship: i64,
    pub open_refunds: i64,
    pub daily: Vec<(chrono::NaiveDate, i64)>,
}

/// Sum and count of orders paid in [from, to).
fn paid_between(
    c: &mut DbConn,
    shop_id: i64,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> Result<(i64, i64), AppError> {
    Ok(orders::table
        .filter(orders::shop_id.eq(shop_id))
        .filter(orders::paid_at.ge(from))
        .filter(orders::paid_at.lt(to))
        .select((
            diesel::dsl::sql::<diesel::sql_types::BigInt>(
                "CAST(COALESCE(SUM(total_fen), 0) AS BIGINT)",
            ),
            diesel::dsl::count_star(),
        ))
        .first(c)?)
}

pub fn overview(
    conn: &mut DbConn,
    me: &SessionUser,
    now: NaiveDateTime,
    tz: chrono_tz::Tz,
) -> Result<Overview, AppError> {
    use chrono::TimeZone;
    let m = require_shop_role(conn, me, ShopRole::CustomerService)?;
    let shop = m.shop.id;
    let today = tz.from_utc_datetime(&now).date_naive();
    // The UTC instant a platform day starts.
    let start_of = |d: chrono::NaiveDate| -> NaiveDateTime {
        d.and_hms_opt(0, 0, 0)
            .and_then(|t| tz.from_local_datetime(&t).earliest())
            .map(|t| t.naive_utc())
            .unwrap_or(now)
    };
    let mut daily = Vec::with_capacity(30);
    for back in (0..30).rev() {
        let day = today - Duration::days(back);
        let (gmv, _) = paid_between(conn, shop, start_of(day), start_of(day + Duration::days(1)))?;
        daily.push((day, gmv));
    }
    let (today_gmv, today_orders) =
        paid_between(conn, shop, start_of(today), now + Duration::seconds(1))?;
    let month_start = start_of(today - Duration::days(29));
    let (month_gmv, month_orders) =
        paid_between(conn, shop, month_start, now + Duration::seconds(1))?;
    let (month_refunded, month_refunds): (i64, i64) = refunds::table
        .filter(refunds::shop_id.eq(shop))
        .filter(refunds::status.eq("refunded"))
        .filter(refunds::completed_at.ge(month_start))
        .select((
            diesel::dsl::sql::<diesel::sql_types::BigInt>(
                "CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT)",
            ),
            diesel::dsl::count_star(),
        ))
        .first(conn)?;
    let to_ship: i64 = orders::table
        .filter(orders::shop_id.eq(shop))
        .filter(orders::status.eq(OrderStatus::Paid.as_str()))
        .count()
        .get_result(conn)?;
    let open_refunds: i64 = refunds::table
        .filter(refunds::shop_id.eq(shop))
        .filter(refunds::status.eq_any(["requested", "awaiting_return"]))
        .count()
        .get_result(conn)?;
    Ok(Overview {
        today_gmv,
        today_orders,
        month_gmv,
        month_orders,
        month_refunds,
        month_refunded,
        to_ship,
        open_refunds,
        daily,
    })
}

// ---------- evidence ----------

/// A photo attached to a refund request or complaint of an order, for the order's buyer, its
/// shop's customer service or owner, and moderators; anyone else, or a file not attached to
/// this order, is "not found".
pub fn evidence(
    conn: &mut DbConn,
    me: &SessionUser,
    order_no: &str,
    media_id: i64,
) -> Result<crate::accounts::service::MediaFile, AppError> {
    use crate::db::schema::complaints;
    let order: Order = orders::table
        .filter(orders::order_no.eq(order_no))
        .select(Order::as_select())
        .first(conn)
        .optional()?
        .ok_or(AppError::NotFound)?;
    let allowed = order.buyer_id == me.id
        || me.has_role(crate::accounts::Role::Moderator)
        || crate::shops::service::membership(conn, me.id)?.is_some_and(|m| {
            m.shop.id == order.shop_id && m.role.allows(ShopRole::CustomerService)
        });
    if !allowed {
        return Err(AppError::NotFound);
    }
    let mut lists: Vec<String> = refunds::table
        .filter(refunds::order_id.eq(order.id))
        .select(refunds::photo_media_ids)
        .load(conn)?;
    lists.extend(
        complaints::table
            .filter(complaints::order_id.eq(order.id))
            .select(complaints::evidence_media_ids)
            .load::<String>(conn)?,
    );
    let attached = lists
        .iter()
        .flat_map(|l| l.split(','))
        .any(|x| x.parse::<i64>().ok() == Some(media_id));
    if !attached {
        return Err(AppError::NotFound);
    }
    crate::accounts::service::get_media(conn, media_id)
}

// ---------- payment ----------

/// Starts paying the buyer's unpaid orders (of one checkout, or one order): one intent, one
/// `payments` row per order. Returns the intent and its amount.
pub fn start_payment(
    conn: &mut DbConn,
    me: &SessionUser,
    provider: &str,
    checkout_id: Option<i64>,
    order_no: Option<&str>,
    now: NaiveDateTime,
) -> Result<String, AppError> {
    write_tx(conn, |c| {
        if let Some(no) = order_no {
            own_order(c, me, no)?;
        } else if let Some(id) = checkout_id {
            let mine: i64 = orders::table
                .filter(orders::checkout_id.eq(id))
                .filter(orders::buyer_id.eq(me.id))
                .count()
                .get_result(c)?;
            if mine == 0 {
                return Err(AppError::NotFound);
            }
        }
        let mut q = orders::table
            .filter(orders::buyer_id.eq(me.id))
            .filter(orders::status.eq(OrderStatus::PendingPayment.as_str()))
            .filter(orders::pay_deadline.gt(now))
            .into_boxed();
        match (checkout_id, order_no) {
            (Some(id), _) => q = q.filter(orders::checkout_id.eq(id)),
            (None, Some(no)) => q = q.filter(orders::order_no.eq(no.to_string())),
            (None, None) => return Err(AppError::NotFound),
        }
        let unpaid: Vec<(i64, i64)> = q
            .order(orders::id)
            .select((orders::id, orders::total_fen))
            .load(c)?;
        if unpaid.is_empty() {
            return Err(AppError::Conflict("order.conflict.pay"));
        }
        let intent = crate::accounts::session::random_token()[..40].to_string();
        for (order_id, amount) in unpaid {
            diesel::insert_into(payments::table)
                .values((
                    payments::intent.eq(&intent),
                    payments::provider.eq(provider),
                    payments::order_id.eq(order_id),
                    payments::buyer_id.eq(me.id),
                    payments::amount_fen.eq(amount),
                    payments::status.eq("pending"),
                    payments::created_at.eq(now),
                ))
                .execute(c)?;
        }
        Ok(intent)
    })
}

/// What a payment intent is for (the provider's page shows it).
#[derive(Debug, Clone)]
pub struct Intent {
    pub intent: String,
    pub amount_fen: i64,
    pub order_nos: Vec<String>,
    /// Still awaiting the provider's answer.
    pub pending: bool,
}

/// The buyer's own payment intent.
pub fn intent_of(conn: &mut DbConn, me: &SessionUser, intent: &str) -> Result<Intent, AppError> {
    let rows: Vec<(i64, String, String)> = payments::table
        .inner_join(orders::table)
        .filter(payments::intent.eq(intent))
        .filter(payments::buyer_id.eq(me.id))
        .order(payments::id)
        .select((payments::amount_fen, payments::status, orders::order_no))
        .load(conn)?;
    if rows.is_empty() {
        return Err(AppError::NotFound);
    }
    Ok(Intent {
        intent: intent.to_string(),
        amount_fen: rows.iter().map(|r| r.0).sum(),
        pending: rows.iter().any(|r| r.1 == "pending"),
        order_nos: rows.into_iter().map(|r| r.2).collect(),
    })
}

/// A provider's report about an intent.
#[derive(Debug, Clone)]
pub struct PaymentEvent {
    pub provider: String,
    pub event_id: String,
    pub intent: String,
    pub succeeded: bool,
}

/// What handling a provider event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventResult {
    /// Applied now: these orders became paid.
    Applied { paid: Vec<String> },
    /// This event id was seen before: nothing changed.
    Duplicate,
}

/// Applies a provider callback exactly once (the event id is unique). A success marks each
/// pending order of the intent paid; an order that was cancelled meanwhile keeps its state and
/// its payment is marked refunded.
pub fn apply_payment_event(
    conn: &mut DbConn,
    ev: &PaymentEvent,
    now: NaiveDateTime,
) -> Result<EventResult, AppError> {
    write_tx(conn, |c| {
        let fresh = crate::per_backend!(c, |c| diesel::insert_into(payment_events::table)
            .values((
                payment_events::provider.eq(&ev.provider),
                payment_events::event_id.eq(&ev.event_id),
                payment_events::intent.eq(&ev.intent),
                payment_events::outcome.eq(if ev.succeeded { "succeeded" } else { "failed" }),
                payment_events::received_at.eq(now),
            ))
            .on_conflict_do_nothing()
            .execute(c))?;
        if fresh == 0 {
            return Ok(EventResult::Duplicate);
        }
        let rows: Vec<(i64, i64)> = payments::table
            .filter(payments::intent.eq(&ev.intent))
            .filter(payments::provider.eq(&ev.provider))
            .filter(payments::status.eq("pending"))
            .select((payments::id, payments::order_id))
            .load(c)?;
        if rows.is_empty() {
            let known: i64 = payments::table
                .filter(payments::intent.eq(&ev.intent))
                .filter(payments::provider.eq(&ev.provider))
                .count()
                .get_result(c)?;
            // A second report about a settled intent changes nothing.
            return if known > 0 {
                Ok(EventResult::Duplicate)
            } else {
                Err(AppError::NotFound)
            };
        }
        let mut paid = Vec::new();
        for (payment_id, order_id) in rows {
            if !ev.succeeded {
                diesel::update(payments::table.find(payment_id))
                    .set((
                        payments::status.eq("failed"),
                        payments::settled_at.eq(Some(now)),
                    ))
                    .execute(c)?;
                continue;
            }
            let n = diesel::update(
                orders::table
                    .find(order_id)
                    .filter(orders::status.eq(OrderStatus::PendingPayment.as_str())),
            )
            .set((
                orders::status.eq(OrderStatus::Paid.as_str()),
                orders::paid_at.eq(Some(now)),
                orders::updated_at.eq(now),
            ))
            .execute(c)?;
            let status = if n == 1 { "succeeded" } else { "refunded" };
            diesel::update(payments::table.find(payment_id))
                .set((
                    payments::status.eq(status),
                    payments::settled_at.eq(Some(now)),
                ))
                .execute(c)?;
            if n == 1 {
                event(c, order_id, "paid", None, "", now)?;
                count_sales(c, order_id)?;
                let no = notify_merchant_paid(c, order_id)?;
                paid.push(no);
            } else {
                // Paid too late (the order was cancelled): the money goes back.
                event(c, order_id, "payment_refunded", None, "", now)?;
            }
        }
        Ok(EventResult::Applied { paid })
    })
}

fn count_sales(c: &mut DbConn, order_id: i64) -> Result<(), AppError> {
    let lines: Vec<(i64, i64)> = order_lines::table
        .filter(order_lines::order_id.eq(order_id))
        .order(order_lines::product_id)
        .select((order_lines::product_id, order_lines::quantity))
        .load(c)?;
    for (pid, q) in lines {
        diesel::update(products::table.find(pid))
            .set(products::sales_count.eq(products::sales_count + q))
            .execute(c)?;
    }
    Ok(())
}

pub(super) fn user_mail(
    c: &mut DbConn,
    user_id: i64,
) -> Result<(String, String, Locale), AppError> {
    let (email, name, locale): (String, String, Option<String>) = users::table
        .find(user_id)
        .select((users::email, users::display_name, users::locale))
        .first(c)?;
    Ok((
        email,
        name,
        locale
            .as_deref()
            .and_then(Locale::parse)
            .unwrap_or_default(),
    ))
}

fn notify_merchant_paid(c: &mut DbConn, order_id: i64) -> Result<String, AppError> {
    let (no, total, shop_name, owner): (String, i64, String, i64) = orders::table
        .inner_join(shops::table)
        .filter(orders::id.eq(order_id))
        .select((
            orders::order_no,
            orders::total_fen,
            shops::name,
            shops::official_user_id,
        ))
        .first(c)?;
    let (email, _, l) = user_mail(c, owner)?;
    let amount = i18n::money(total);
    mail::enqueue(
        c,
        &Outgoing {
            to: &email,
            kind: "order_paid",
            subject: i18n::tf(l, "mail.order_paid.subject", &[("order", &no)]),
            body: i18n::tf(
                l,
                "mail.order_paid.body",
                &[("shop", &shop_name), ("order", &no), ("amount", &amount)],
            ),
        },
    )?;
    Ok(no)
}

// ---------- transitions ----------

/// Moves an order from one of `from` to `to` if it is still in one of them; 409 otherwise.
pub(super) fn transition(
    c: &mut DbConn,
    order: &Order,
    from: &[OrderStatus],
    to: OrderStatus,
    conflict: &'static str,
    now: NaiveDateTime,
) -> Result<(), AppError> {
    let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
    let n = diesel::update(
        orders::table
            .find(order.id)
            .filter(orders::status.eq_any(&from)),
    )
    .set((orders::status.eq(to.as_str()), orders::updated_at.eq(now)))
    .execute(c)?;
    if n == 0 {
        return Err(AppError::Conflict(conflict));
    }
    Ok(())
}

/// Puts every line of an order back into stock, each line at most once.
pub(super) fn restock(c: &mut DbConn, order_id: i64) -> Result<(), AppError> {
    let lines: Vec<(i64, i64, i64)> = order_lines::table
        .filter(order_lines::order_id.eq(order_id))
        .filter(order_lines::restocked.eq(false))
        .order(order_lines::sku_id)
        .select((order_lines::id, order_lines::sku_id, order_lines::quantity))
        .load(c)?;
    for (line, sku, qty) in lines {
        let n = diesel::update(
            order_lines::table
                .find(line)
                .filter(order_lines::restocked.eq(false)),
        )
        .set(order_lines::restocked.eq(true))
        .execute(c)?;
        if n == 1 {
            diesel::update(skus::table.find(sku))
                .set(skus::stock.eq(skus::stock + qty))
                .execute(c)?;
        }
    }
    Ok(())
}

pub const CANCEL_REASONS: [&str; 4] = ["changed_mind", "wrong_address", "found_cheaper", "other"];

/// The buyer cancels before shipping: an unpaid order simply closes; a paid one is refunded
/// in full. Stock goes back either way.
pub fn cancel_by_buyer(
    conn: &mut DbConn,
    me: &SessionUser,
    order_no: &str,
    reason: &str,
    now: NaiveDateTime,
) -> Result<(), AppError> {
    if !CANCEL_REASONS.contains(&reason) {
        return Err(AppError::field("reason", "cancel_reason"));
    }
    write_tx(conn, |c| {
        let order = own_order(c, me, order_no)?;
        if has_open_refund(c, order.id)? {
            return Err(AppError::Conflict("order.conflict.refund_open"));
        }
        let was_paid = order.is(OrderStatus::Paid);
        transition(
            c,
            &order,
            &[OrderStatus::PendingPayment, OrderStatus::Paid],
            OrderStatus::Cancelled,
            "order.conflict.cancel",
            now,
        )?;
        diesel::update(orders::table.find(order.id))
            .set((
                orders::cancelled_at.eq(Some(now)),
                orders::cancel_reason.eq(reason),
            ))
            .execute(c)?;
        if was_paid {
            diesel::update(orders::table.find(order.id))
                .set(orders::refunded_fen.eq(order.total_fen))
                .execute(c)?;
            diesel::update(
                payments::table
                    .filter(payments::order_id.eq(order.id))
                    .filter(payments::status.eq("succeeded")),
            )
            .set(payments::status.eq("refunded"))
            .execute(c)?;
        }
        restock(c, order.id)?;
        event(
            c,
            order.id,
            if was_paid {
                "cancelled_refunded"
            } else {
                "cancelled"
            },
            Some(me.id),
            reason,
            now,
        )
    })
}

/// Carriers the shipping form offers.
pub const CARRIERS: [&str; 8] = ["sf", "zto", "yto", "sto", "yunda", "jd", "ems", "other"];

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct ShipForm {
    pub carrier: String,
    pub tracking_no: String,
}

fn check_ship(f: &ShipForm) -> Result<(String, String), AppError> {
    let mut errors = FieldErrors::new();
    let carrier = f.carrier.trim().to_string();
    let tracking = f.tracking_no.trim().to_ascii_uppercase();
    if !CARRIERS.contains(&carrier.as_str()) {
        errors.add("carrier", "carrier_unknown");
    }
    if !(6..=30).contains(&tracking.len())
        || !tracking
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        errors.add("tracking_no", "tracking_format");
    }
    errors.into_result()?;
    Ok((carrier, tracking))
}

/// Ships a paid order of the merchant's shop (customer service or owner) and tells the buyer.
pub fn ship(
    conn: &mut DbConn,
    me: &SessionUser,
    order_no: &str,
    form: &ShipForm,
    now: NaiveDateTime,
) -> Result<(), AppError> {
    let m = require_shop_role(conn, me, ShopRole::CustomerService)?;
    let (carrier, tracking) = check_ship(form)?;
    write_tx(conn, |c| {
        let order = shop_order(c, m.shop.id, order_no)?;
        ship_order(c, &order, &carrier, &tracking, Some(me.id), now)
    })
}

fn has_open_refund(c: &mut DbConn, order_id: i64) -> Result<bool, AppError> {
    let open: i64 = refunds::table
        .filter(refunds::order_id.eq(order_id))
        .filter(refunds::status.eq_any(["requested", "awaiting_return"]))
        .count()
        .get_result(c)?;
    Ok(open > 0)
}

fn ship_order(
    c: &mut DbConn,
    order: &Order,
    carrier: &str,
    tracking: &str,
    actor: Option<i64>,
    now: NaiveDateTime,
) -> Result<(), AppError> {
    // The buyer asked for their money back before shipping: answer that first.
    if has_open_refund(c, order.id)? {
        return Err(AppError::Conflict("order.conflict.refund_open"));
    }
    transition(
        c,
        order,
        &[OrderStatus::Paid],
        OrderStatus::Shipped,
        "order.conflict.ship",
        now,
    )?;
    diesel::update(orders::table.find(order.id))
        .set((
            orders::carrier.eq(Some(carrier)),
            orders::tracking_no.eq(Some(tracking)),
            orders::shipped_at.eq(Some(now)),
        ))
        .execute(c)?;
    event(
        c,
        order.id,
        "shipped",
        actor,
        &format!("{carrier} {tracking}"),
        now,
    )?;
    let (email, name, l) = user_mail(c, order.buyer_id)?;
    let carrier_name = i18n::t(l, &format!("carrier.{carrier}")).into_owned();
    mail::enqueue(
        c,
        &Outgoing {
            to: &email,
            kind: "order_shipped",
            subject: i18n::tf(
                l,
                "mail.order_shipped.subject",
                &[("order", &order.order_no)],
            ),
            body: i18n::tf(
                l,
                "mail.order_shipped.body",
                &[
                    ("name", &name),
                    ("order", &order.order_no),
                    ("carrier", &carrier_name),
                    ("tracking", tracking),
                ],
            ),
        },
    )
}

/// The carrier reports a shipped order delivered.
pub fn mark_delivered(
    conn: &mut DbConn,
    order_no: &str,
    now: NaiveDateTime,
) -> Result<(), AppError> {
    write_tx(conn, |c| {
        let order: Order = orders::table
            .filter(orders::order_no.eq(order_no))
            .select(Order::as_select())
            .first(c)
            .optional()?
            .ok_or(AppError::NotFound)?;
        transition(
            c,
            &order,
            &[OrderStatus::Shipped],
            OrderStatus::Delivered,
            "order.conflict.deliver",
            now,
        )?;
        diesel::update(orders::table.find(order.id))
            .set(orders::delivered_at.eq(Some(now)))
            .execute(c)?;
        event(c, order.id, "delivered", None, "", now)
    })
}

/// The buyer confirms receipt of a shipped or delivered order.
pub fn confirm_receipt(
    conn: &mut DbConn,
    me: &SessionUser,
    order_no: &str,
    now: NaiveDateTime,
) -> Result<(), AppError> {
    write_tx(conn, |c| {
        let order = own_order(c, me, order_no)?;
        complete(c, &order, Some(me.id), "confirmed", now)
    })
}

fn complete(
    c: &mut DbConn,
    order: &Order,
    actor: Option<i64>,
    kind: &str,
    now: NaiveDateTime,
) -> Result<(), AppError> {
    transition(
        c,
        order,
        &[OrderStatus::Shipped, OrderStatus::Delivered],
        OrderStatus::Completed,
        "order.conflict.confirm",
        now,
    )?;
    diesel::update(orders::table.find(order.id))
        .set(orders::completed_at.eq(Some(now)))
        .execute(c)?;
    // Without a delivery scan, receipt is the delivery.
    diesel::update(
        orders::table
            .find(order.id)
            .filter(orders::delivered_at.is_null()),
    )
    .set(orders::delivered_at.eq(Some(now)))
    .execute(c)?;
    event(c, order.id, kind, actor, "", now)
}

// ---------- jobs ----------

/// Cancels unpaid orders past their deadline (stock back, exactly once: each order moves by a
/// compare-and-set, so two nodes running this at once cancel each order once). At most
/// `limit` per call.
pub fn cancel_expired(
    conn: &mut DbConn,
    now: NaiveDateTime,
    limit: i64,
) -> Result<usize, AppError> {
    let due: Vec<Order> = orders::table
        .filter(orders::status.eq(OrderStatus::PendingPayment.as_str()))
        .filter(orders::pay_deadline.le(now))
        .order(orders::pay_deadline)
        .limit(limit)
        .select(Order::as_select())
        .load(conn)?;
    let mut done = 0;
    for order in due {
        let r = write_tx(conn, |c| {
            transition(
                c,
                &order,
                &[OrderStatus::PendingPayment],
                OrderStatus::Cancelled,
                "order.conflict.cancel",
                now,
            )?;
            diesel::update(orders::table.find(order.id))
                .set((
                    orders::cancelled_at.eq(Some(now)),
                    orders::cancel_reason.eq("payment_timeout"),
                ))
                .execute(c)?;
            restock(c, order.id)?;
            event(c, order.id, "cancelled", None, "payment_timeout", now)
        });
        match r {
            Ok(()) => done += 1,
            // Paid or cancelled by someone else meanwhile: nothing to do.
            Err(AppError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Confirms receipt for delivered orders after `days`, and for shipped orders without a
/// delivery scan after `shipped_days`. At most `limit` per call.
pub fn auto_confirm(
    conn: &mut DbConn,
    now: NaiveDateTime,
    days: i64,
    shipped_days: i64,
    limit: i64,
) -> Result<usize, AppError> {
    let delivered: Vec<Order> = orders::table
        .filter(orders::status.eq(OrderStatus::Delivered.as_str()))
        .filter(orders::delivered_at.le(now - Duration::days(days)))
        .limit(limit)
        .select(Order::as_select())
        .load(conn)?;
    let shipped: Vec<Order> = orders::table
        .filter(orders::status.eq(OrderStatus::Shipped.as_str()))
        .filter(orders::shipped_at.le(now - Duration::days(shipped_days)))
        .limit(limit)
        .select(Order::as_select())
        .load(conn)?;
    let mut done = 0;
    for order in delivered.into_iter().chain(shipped) {
        match write_tx(conn, |c| complete(c, &order, None, "auto_confirmed", now)) {
            Ok(()) => done += 1,
            Err(AppError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones() {
        assert!(phone_ok("13812345678"));
        assert!(phone_ok("19900001111"));
        assert!(!phone_ok("12812345678"));
        assert!(!phone_ok("1381234567"));
        assert!(!phone_ok("1381234567a"));
        assert_eq!(
            super::super::model::mask_phone("13812345678"),
            "138****5678"
        );
    }

    #[test]
    fn order_numbers_are_dated_and_16_digits() {
        let now = chrono::NaiveDate::from_ymd_opt(2026, 11, 30)
            .and_then(|d| d.and_hms_opt(8, 0, 0))
            .unwrap_or_default();
        let no = order_no(now);
        assert_eq!(no.len(), 16);
        assert!(no.starts_with("261130"));
        assert!(no.bytes().all(|b| b.is_ascii_digit()));
    }

    #[test]
    fn checkout_keys() {
        assert!(key_ok(&new_checkout_key()));
        assert!(!key_ok("short"));
        assert!(!key_ok("0123456789abcdef'; DROP"));
    }

    #[test]
    fn labels() {
        use crate::catalog::model::variant_label;
        assert_eq!(variant_label("颜色:红 / 尺码:M"), "红 / M");
        assert_eq!(variant_label(""), "");
    }
}
