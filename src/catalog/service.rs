//! Catalog use cases: products (SPU) and SKUs for merchants, the listing workflow through the
//! rules engine, moderators' review and delisting, and what buyers may see. A merchant reaches
//! products only through their own shop membership: another shop's product is "not found".

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Deserialize;

use super::model::{parse_yuan, Product, ProductCard, Sku, VariantSpec};
use crate::accounts::{service as accounts, Role, SessionUser};
use crate::db::json_rows::{self, JsonRows, JsonSql};
use crate::db::schema::{
    categories, listing_checks as lc, products, shop_qualifications as sq, shops, skus, users,
};
use crate::db::{is_unique_violation, write_tx, DbConn};
use crate::error::{AppError, FieldErrors};
use crate::governance::rules::{self, Hit, Listing, Outcome};
use crate::i18n::{self, Locale};
use crate::mail::{self, Outgoing};
use crate::pagination::{PageQuery, Paginated};
use crate::shops::model::{Category, Shop, ShopRole};
use crate::shops::service::{require_shop_role, Membership};

pub const PER_PAGE: i64 = 20;

/// The basic fields of a product.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct ProductForm {
    pub title: String,
    pub subtitle: String,
    pub description: String,
    pub attributes: String,
    pub category_id: String,
}

struct CleanProduct {
    title: String,
    subtitle: String,
    description: String,
    attributes: String,
    category_id: i64,
}

fn text_ok(s: &str) -> bool {
    !s.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
}

fn clean(conn: &mut DbConn, f: &ProductForm) -> Result<CleanProduct, AppError> {
    let mut e = FieldErrors::new();
    let title = f.title.trim().to_string();
    match title.chars().count() {
        0 => e.add("title", "required"),
        n if !(4..=60).contains(&n) => e.add("title", "title_length"),
        _ if !text_ok(&title) || title.contains('\n') => e.add("title", "no_control_chars"),
        _ => {}
    }
    let subtitle = f.subtitle.trim().to_string();
    if subtitle.chars().count() > 60 || subtitle.contains('\n') {
        e.add("subtitle", "subtitle_length");
    }
    let description = f.description.trim().replace("\r\n", "\n");
    if description.chars().count() > 5000 {
        e.add("description", "product_description_length");
    } else if !text_ok(&description) {
        e.add("description", "no_control_chars");
    }
    let attributes = f.attributes.trim().replace("\r\n", "\n");
    if attributes.chars().count() > 2000
        || attributes
            .lines()
            .filter(|l| !l.trim().is_empty())
            .any(|l| !l.contains(':') && !l.contains('：'))
    {
        e.add("attributes", "attributes_format");
    }
    let category_id = f.category_id.trim().parse::<i64>().ok().filter(|id| {
        categories::table
            .find(*id)
            .count()
            .get_result::<i64>(conn)
            .map(|n| n == 1)
            .unwrap_or(false)
    });
    if category_id.is_none() {
        e.add("category_id", "choose_one");
    }
    e.into_result()?;
    Ok(CleanProduct {
        title,
        subtitle,
        description,
        attributes,
        category_id: category_id.unwrap_or_default(),
    })
}

/// A product of the caller's shop (404 for anyone else's).
fn own_product(conn: &mut DbConn, m: &Membership, id: i64) -> Result<Product, AppError> {
    products::table
        .find(id)
        .filter(products::shop_id.eq(m.shop.id))
        .filter(products::status.ne("removed"))
        .select(Product::as_select())
        .first(conn)
        .optional()?
        .ok_or(AppError::NotFound)
}

pub fn skus_of(conn: &mut DbConn, product_id: i64) -> Result<Vec<Sku>, AppError> {
    Ok(crate::per_backend!(conn, |c| skus::table
        .filter(skus::product_id.eq(product_id))
        .order((skus::position, skus::id))
        .select(Sku::as_select())
        .load(c))?)
}

/// The hits of the newest check of a product.
pub fn last_hits(conn: &mut DbConn, product_id: i64) -> Result<Vec<Hit>, AppError> {
    let text: Option<String> = lc::table
        .filter(lc::product_id.eq(product_id))
        .order(lc::id.desc())
        .select(lc::hits)
        .first(conn)
        .optional()?;
    Ok(text
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default())
}

pub fn create_product(
    conn: &mut DbConn,
    me: &SessionUser,
    f: &ProductForm,
    now: NaiveDateTime,
) -> Result<i64, AppError> {
    let m = require_shop_role(conn, me, ShopRole::Operator)?;
    let p = clean(conn, f)?;
    write_tx(conn, |c| {
        let id: i64 = diesel::insert_into(products::table)
            .values((
                products::shop_id.eq(m.shop.id),
                products::category_id.eq(p.category_id),
                products::title.eq(&p.title),
                products::subtitle.eq(&p.subtitle),
                products::description.eq(&p.description),
                products::attributes.eq(&p.attributes),
                products::status.eq("draft"),
                products::created_at.eq(now),
                products::updated_at.eq(now),
            ))
            .returning(products::id)
            .get_result(c)?;
        // Every product starts with one SKU; variants can replace it with a grid.
        insert_sku(c, m.shop.id, id, "", 0, now)?;
        Ok(id)
    })
}

fn insert_sku(
    c: &mut DbConn,
    shop_id: i64,
    product_id: i64,
    attrs: &str,
    position: i64,
    now: NaiveDateTime,
) -> Result<(), AppError> {
    diesel::insert_into(skus::table)
        .values((
            skus::product_id.eq(product_id),
            skus::shop_id.eq(shop_id),
            skus::code.eq(format!("P{product_id}-{}", position + 1)),
            skus::attrs.eq(attrs),
            skus::price_fen.eq(0i64),
            skus::stock.eq(0i64),
            skus::position.eq(position),
            skus::created_at.eq(now),
            skus::updated_at.eq(now),
        ))
        .execute(c)?;
    Ok(())
}

/// Everything the edit page shows.
pub struct Editable {
    pub m: Membership,
    pub product: Product,
    pub skus: Vec<Sku>,
    pub hits: Vec<Hit>,
    /// (image id, full media id, thumbnail media id); the first is the cover.
    pub images: Vec<(i64, i64, Option<i64>)>,
}

pub fn editable(conn: &mut DbConn, me: &SessionUser, id: i64) -> Result<Editable, AppError> {
    let m = require_shop_role(conn, me, ShopRole::Operator)?;
    let product = own_product(conn, &m, id)?;
    Ok(Editable {
        skus: skus_of(conn, id)?,
        hits: last_hits(conn, id)?,
        images: images_of(conn, id)?,
        product,
        m,
    })
}

/// Saves the basic fields. An edit of a listed product is checked again at once (and may
/// leave the storefront until it passes).
pub fn update_product(
    conn: &mut DbConn,
    me: &SessionUser,
    id: i64,
    f: &ProductForm,
    now: NaiveDateTime,
) -> Result<Option<Outcome>, AppError> {
    let m = require_shop_role(conn, me, ShopRole::Operator)?;
    let product = own_product(conn, &m, id)?;
    if product.status == "pending_review" {
        return Err(AppError::Conflict("product.pending"));
    }
    let p = clean(conn, f)?;
    write_tx(conn, |c| {
        diesel::update(products::table.find(id))
            .set((
                products::title.eq(&p.title),
                products::subtitle.eq(&p.subtitle),
                products::description.eq(&p.description),
                products::attributes.eq(&p.attributes),
                products::category_id.eq(p.category_id),
                products::updated_at.eq(now),
            ))
            .execute(c)?;
        if product.status == "listed" {
            return check_and_apply(c, &m, id, now).map(Some);
        }
        Ok(None)
    })
}

/// Replaces the variant dimensions and regenerates the SKU grid, keeping the SKUs whose
/// combination still exists (with their prices and stock).
pub fn set_variants(
    conn: &mut DbConn,
    me: &SessionUser,
    id: i64,
    text: &str,
    now: NaiveDateTime,
) -> Result<(), AppError> {
    let m = require_shop_role(conn, me, ShopRole::Operator)?;
    let product = own_product(conn, &m, id)?;
    if product.status == "listed" || product.status == "pending_review" {
        return Err(AppError::Conflict("product.delist_first"));
    }
    let spec = VariantSpec::parse(text).map_err(|c| AppError::field("variants", c))?;
    let wanted = spec.combinations();
    write_tx(conn, |c| {
        let existing = skus_of(c, id)?;
        for s in existing.iter().filter(|s| !wanted.contains(&s.attrs)) {
            diesel::delete(skus::table.find(s.id)).execute(c)?;
        }
        let max_pos = existing.iter().map(|s| s.position).max().unwrap_or(-1);
        let mut next = max_pos + 1;
        for (i, attrs) in wanted.iter().enumerate() {
            match existing.iter().find(|s| &s.attrs == attrs) {
                Some(s) => {
                    diesel::update(skus::table.find(s.id))
                        .set(skus::position.eq(i as i64))
                        .execute(c)?;
                }
                None => {
                    // Codes stay unique: new rows take fresh numbers.
                    insert_sku(c, m.shop.id, id, attrs, next, now)?;
                    diesel::update(
                        skus::table
                            .filter(skus::product_id.eq(id))
                            .filter(skus::position.eq(next)),
                    )
                    .set(skus::position.eq(i as i64))
                    .execute(c)?;
                    next += 1;
                }
            }
        }
        diesel::update(products::table.find(id))
            .set((
                products::variant_spec.eq(spec.to_text()),
                products::updated_at.eq(now),
            ))
            .execute(c)?;
        refresh_price_range(c, id)
    })
}

/// One row of the SKU grid as typed.
#[derive(Debug, Clone, Default)]
pub struct SkuInput {
    pub id: i64,
    pub code: String,
    pub price: String,
    pub list_price: String,
    pub stock: String,
}

/// Saves the SKU grid: every row is checked first, and nothing is written when any is bad.
pub fn save_skus(
    conn: &mut DbConn,
    me: &SessionUser,
    id: i64,
    rows: &[SkuInput],
    now: NaiveDateTime,
) -> Result<Option<Outcome>, AppError> {
    let m = require_shop_role(conn, me, ShopRole::Operator)?;
    let product = own_product(conn, &m, id)?;
    if product.status == "pending_review" {
        return Err(AppError::Conflict("product.pending"));
    }
    let existing = skus_of(conn, id)?;
    let mut e = FieldErrors::new();
    let mut clean = Vec::new();
    for r in rows {
        if !existing.iter().any(|s| s.id == r.id) {
            return Err(AppError::NotFound);
        }
        let f = |name: &str| format!("sku_{}_{name}", r.id);
        let code = r.code.trim().to_string();
        if code.is_empty()
            || code.chars().count() > 40
            || !code
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            e.add(&f("code"), "sku_code_format");
        }
        let price = parse_yuan(&r.price);
        if price.is_none() {
            e.add(&f("price"), "price_format");
        }
        let list = if r.list_price.trim().is_empty() {
            Some(None)
        } else {
            parse_yuan(&r.list_price).map(Some)
        };
        if list.is_none() {
            e.add(&f("list_price"), "price_format");
        }
        let stock = r
            .stock
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|s| (0..=10_000_000).contains(s));
        if stock.is_none() {
            e.add(&f("stock"), "stock_format");
        }
        if let (Some(p), Some(l), Some(s)) = (price, list, stock) {
            clean.push((r.id, code, p, l, s));
        }
    }
    let mut codes: Vec<&str> = clean.iter().map(|c| c.1.as_str()).collect();
    codes.sort();
    if codes.windows(2).any(|w| w[0] == w[1]) {
        e.add("skus", "sku_code_duplicate");
    }
    e.into_result()?;
    let result = write_tx(conn, |c| {
        // Codes are unique per shop and updated one row at a time, so a grid that swaps or
        // shifts codes among its own SKUs would clash with itself half way: the SKUs whose
        // code changes first take a placeholder no merchant code can be (`~` is not allowed).
        for (sku_id, code, ..) in &clean {
            if existing.iter().any(|s| s.id == *sku_id && s.code != *code) {
                diesel::update(skus::table.find(sku_id).filter(skus::product_id.eq(id)))
                    .set(skus::code.eq(format!("~{sku_id}")))
                    .execute(c)?;
            }
        }
        for (sku_id, code, price, list, stock) in &clean {
            diesel::update(skus::table.find(sku_id).filter(skus::product_id.eq(id)))
                .set((
                    skus::code.eq(code),
                    skus::price_fen.eq(price),
                    skus::list_price_fen.eq(list),
                    skus::stock.eq(stock),
                    skus::updated_at.eq(now),
                ))
                .execute(c)?;
        }
        refresh_price_range(c, id)?;
        if product.status == "listed" {
            return check_and_apply(c, &m, id, now).map(Some);
        }
        Ok(None)
    });
    match result {
        Err(AppError::Db(e)) if is_unique_violation(&e) => {
            Err(AppError::field("skus", "sku_code_taken"))
        }
        other => other,
    }
}

fn refresh_price_range(c: &mut DbConn, id: i64) -> Result<(), AppError> {
    let prices: Vec<i64> = skus::table
        .filter(skus::product_id.eq(id))
        .select(skus::price_fen)
        .load(c)?;
    let (min, max) = (prices.iter().min().copied(), prices.iter().max().copied());
    diesel::update(products::table.find(id))
        .set((products::price_min.eq(min), products::price_max.eq(max)))
        .execute(c)?;
    Ok(())
}

/// Changes one SKU's stock by `delta` with a single conditional update (never below zero).
pub fn adjust_stock(
    conn: &mut DbConn,
    me: &SessionUser,
    sku_id: i64,
    delta: i64,
    now: NaiveDateTime,
) -> Result<(), AppError> {
    let m = require_shop_role(conn, me, ShopRole::Operator)?;
    write_tx(conn, |c| {
        let n = diesel::update(
            skus::table
                .find(sku_id)
                .filter(skus::shop_id.eq(m.shop.id))
                .filter(skus::stock.ge(-delta)),
        )
        .set((
            skus::stock.eq(skus::stock + delta),
            skus::updated_at.eq(now),
        ))
        .execute(c)?;
        if n == 0 {
            let mine: i64 = skus::table
                .find(sku_id)
                .filter(skus::shop_id.eq(m.shop.id))
                .count()
                .get_result(c)?;
            return Err(if mine == 0 {
                AppError::NotFound
            } else {
                AppError::Conflict("stock.insufficient")
            });
        }
        Ok(())
    })
}

/// The category, its ancestors and what they require.
fn category_path(c: &mut DbConn, id: i64) -> Result<Vec<Category>, AppError> {
    let mut path = Vec::new();
    let mut next = Some(id);
    while let Some(cid) = next {
        let cat: Category = categories::table
            .find(cid)
            .select(Category::as_select())
            .first(c)?;
        next = cat.parent_id;
        path.push(cat);
        if path.len() > 8 {
            break;
        }
    }
    Ok(path)
}

/// Runs the rules in force on a product of a shop: the product and every hit (deduplicated).
pub fn evaluate_product(
    c: &mut DbConn,
    shop_id: i64,
    id: i64,
    ruleset: &rules::RuleSet,
) -> Result<(Product, Vec<Hit>), AppError> {
    let product: Product = products::table
        .find(id)
        .select(Product::as_select())
        .first(c)?;
    let skus = skus_of(c, id)?;
    let path = category_path(c, product.category_id)?;
    let held: Vec<String> = sq::table
        .filter(sq::shop_id.eq(shop_id))
        .select(sq::kind)
        .load(c)?;
    let listing = Listing {
        texts: [
            ("title", &product.title),
            ("subtitle", &product.subtitle),
            ("description", &product.description),
            ("attributes", &product.attributes),
        ],
        category_path: path.iter().map(|c| c.id).collect(),
        required_qualifications: path
            .iter()
            .flat_map(|c| c.required())
            .map(|k| k.as_str().to_string())
            .collect(),
        shop_qualifications: held,
        skus: skus
            .iter()
            .map(|s| (s.code.clone(), s.price_fen, s.list_price_fen))
            .collect(),
    };
    let mut hits = ruleset.evaluate(&listing);
    hits.dedup();
    Ok((product, hits))
}

/// Runs the rules on a product, records the check, and moves the product to its outcome.
fn check_and_apply(
    c: &mut DbConn,
    m: &Membership,
    id: i64,
    now: NaiveDateTime,
) -> Result<Outcome, AppError> {
    let ruleset = rules::load(c)?;
    let (product, hits) = evaluate_product(c, m.shop.id, id, &ruleset)?;
    let mut result = rules::outcome(&hits);
    // A product the platform took down goes back through a moderator, whatever the rules say.
    if result == Outcome::Pass && product.delisted_by_platform {
        result = Outcome::ManualReview;
    }
    if result == Outcome::Pass {
        super::search::reindex(c, id, &product.title, &product.subtitle)?;
    }
    let (status, listed_at) = match result {
        Outcome::Pass => ("listed", Some(now)),
        Outcome::ManualReview => ("pending_review", product.listed_at),
        Outcome::NeedsChanges => ("needs_changes", product.listed_at),
    };
    diesel::insert_into(lc::table)
        .values((
            lc::product_id.eq(id),
            lc::rule_set_id.eq(ruleset.version),
            lc::outcome.eq(status),
            lc::hits.eq(serde_json::to_string(&hits).map_err(AppError::internal)?),
            lc::created_at.eq(now),
        ))
        .execute(c)?;
    diesel::update(products::table.find(id))
        .set((
            products::status.eq(status),
            products::status_reason.eq(""),
            products::listed_at.eq(listed_at),
            products::updated_at.eq(now),
        ))
        .execute(c)?;
    Ok(result)
}

/// Submits a product for listing: the rules decide between listed, needs changes and manual
/// review.
pub fn submit(
    conn: &mut DbConn,
    me: &SessionUser,
    id: i64,
    now: NaiveDateTime,
) -> Result<Outcome, AppError> {
    let m = require_shop_role(conn, me, ShopRole::Operator)?;
    let product = own_product(conn, &m, id)?;
    match product.status.as_str() {
        "pending_review" => return Err(AppError::Conflict("product.pending")),
        "listed" => return Err(AppError::Conflict("product.already_listed")),
        _ => {}
    }
    if !m.shop.status_at(now).can_list() {
        return Err(AppError::Conflict("shop.cannot_list"));
    }
    write_tx(conn, |c| {
        // Compare-and-set: a concurrent submit of the same product finds it moved on.
        let n = diesel::update(
            products::table
                .find(id)
                .filter(products::status.eq(&product.status)),
        )
        .set(products::updated_at.eq(now))
        .execute(c)?;
        if n == 0 {
            return Err(AppError::Conflict("product.changed"));
        }
        check_and_apply(c, &m, id, now)
    })
}

/// Takes the merchant's own listed products off sale; returns how many changed.
pub fn delist_own(
    conn: &mut DbConn,
    me: &SessionUser,
    ids: &[i64],
    now: NaiveDateTime,
) -> Result<usize, AppError> {
    let m = require_shop_role(conn, me, ShopRole::Operator)?;
    write_tx(conn, |c| {
        Ok(diesel::update(
            products::table
                .filter(products::id.eq_any(ids))
                .filter(products::shop_id.eq(m.shop.id))
                .filter(products::status.eq("listed")),
        )
        .set((
            products::status.eq("delisted"),
            products::status_reason.eq(""),
            products::updated_at.eq(now),
        ))
        .execute(c)?)
    })
}

/// Puts the merchant's own delisted products back through the checks; returns the outcomes.
pub fn relist_own(
    conn: &mut DbConn,
    me: &SessionUser,
    ids: &[i64],
    now: NaiveDateTime,
) -> Result<Vec<(i64, Outcome)>, AppError> {
    let m = require_shop_role(conn, me, ShopRole::Operator)?;
    let candidates: Vec<i64> = products::table
        .filter(products::id.eq_any(ids))
        .filter(products::shop_id.eq(m.shop.id))
        .filter(products::status.eq("delisted"))
        .select(products::id)
        .load(conn)?;
    let mut out = Vec::new();
    for id in candidates {
        out.push((id, submit(conn, me, id, now)?));
    }
    Ok(out)
}

/// One row of the merchant's product list.
#[derive(Debug, Clone)]
pub struct ProductRow {
    pub product: Product,
    pub stock: i64,
}

pub fn list_own(
    conn: &mut DbConn,
    me: &SessionUser,
    status: &str,
    q: &str,
    page: PageQuery,
) -> Result<(Membership, Paginated<ProductRow>), AppError> {
    let m = require_shop_role(conn, me, ShopRole::Operator)?;
    let q = q.trim().to_lowercase();
    let pattern = like_pattern(&q);
    let status = status.to_string();
    let filtered = || {
        let mut b = products::table
            .filter(products::shop_id.eq(m.shop.id))
            .filter(products::status.ne("removed"))
            .into_boxed();
        if !status.is_empty() {
            b = b.filter(products::status.eq(status.clone()));
        }
        if !q.is_empty() {
            b = b.filter(products::title.like(pattern.clone()).escape('\\'));
        }
        b
    };
    let total: i64 = filtered().count().get_result(conn)?;
    let items: Vec<Product> = filtered()
        .order(products::id.desc())
        .limit(PER_PAGE)
        .offset(page.offset(PER_PAGE))
        .select(Product::as_select())
        .load(conn)?;
    let ids: Vec<i64> = items.iter().map(|p| p.id).collect();
    let stocks: Vec<(i64, i64)> = skus::table
        .filter(skus::product_id.eq_any(&ids))
        .select((skus::product_id, skus::stock))
        .load(conn)?;
    let items = items
        .into_iter()
        .map(|product| {
            let stock = stocks
                .iter()
                .filter(|(p, _)| *p == product.id)
                .map(|(_, s)| s)
                .sum();
            ProductRow { product, stock }
        })
        .collect();
    Ok((
        m,
        Paginated {
            items,
            page: page.number(),
            per_page: PER_PAGE,
            total,
        },
    ))
}

pub use crate::db::like_pattern;

// ---------- buyers ----------

/// A product as buyers see it. Only listed products of shops that are not cleared exist here.
pub struct PublicProduct {
    pub product: Product,
    /// (full, thumbnail) media ids in display order.
    pub images: Vec<(i64, Option<i64>)>,
    pub skus: Vec<Sku>,
    pub shop: Shop,
    pub official_handle: String,
    /// The shop's newest scores.
    pub badge: Option<crate::dsr::score::Badge>,
}

/// A product's SKUs in display order: a sub-select of the product page's statement (see
/// [`crate::db::json_rows`]); its argument is the product.
pub struct ProductSkus;

macro_rules! product_skus {
    ($agg:literal, $array:literal, $text:literal) => {
        &[
            concat!(
                "(SELECT ",
                $agg,
                "(",
                $array,
                "(s.id, s.product_id, s.shop_id, s.code, s.attrs, s.price_fen, s.list_price_fen, ",
                "s.stock, s.position) ORDER BY s.position, s.id)",
                $text,
                " FROM skus s WHERE s.product_id = "
            ),
            ")",
        ]
    };
}

impl JsonSql for ProductSkus {
    const POSTGRES: &'static [&'static str] =
        product_skus!("json_agg", "json_build_array", "::text");
    const SQLITE: &'static [&'static str] = product_skus!("json_group_array", "json_array", "");
}

/// The product page's product in one statement: the product with its images (the `gallery`
/// column), its shop, the shop's newest score badge and the SKUs. Every statement is a round
/// trip on PostgreSQL, so the badge rides along as a join and the SKUs as JSON rows. (The
/// ratings are read by [`crate::ratings::service::product_ratings`], and may be cached: this
/// part must be current, as a delisted product or a sold-out SKU must show at once.)
pub fn public_product(conn: &mut DbConn, id: i64) -> Result<PublicProduct, AppError> {
    use crate::dsr::score::Badge;
    type Row = (Product, Shop, String, Option<Badge>, Option<String>);
    let row: Option<Row> = crate::per_backend!(conn, |c| {
        products::table
            .inner_join(shops::table.inner_join(users::table))
            .left_join(crate::newest_snapshot_join!())
            .filter(products::id.eq(id))
            .filter(products::status.eq("listed"))
            .filter(shops::status.ne("cleared"))
            .select((
                Product::as_select(),
                Shop::as_select(),
                users::handle,
                Option::<Badge>::as_select(),
                JsonRows::<ProductSkus, 1>::new([id]),
            ))
            .first(c)
            .optional()
    })?;
    let (product, shop, official_handle, badge, skus) = row.ok_or(AppError::NotFound)?;
    Ok(PublicProduct {
        skus: json_rows::parse(skus.as_deref())?,
        images: product.gallery(),
        product,
        shop,
        official_handle,
        badge,
    })
}

/// The categories a shop has listed products in (its storefront's filter).
pub fn shop_categories(conn: &mut DbConn, shop_id: i64) -> Result<Vec<Category>, AppError> {
    // One statement with a sub-select (prepared once and cached, unlike an IN list of ids).
    Ok(crate::per_backend!(conn, |c| categories::table
        .filter(
            categories::id.eq_any(
                products::table
                    .filter(products::shop_id.eq(shop_id))
                    .filter(products::status.eq("listed"))
                    .select(products::category_id)
            )
        )
        .order((categories::sort_order, categories::id))
        .select(Category::as_select())
        .load(c))?)
}

/// A page of a shop's listed product cards, newest first: a sub-select of the storefront's
/// statement (see [`crate::db::json_rows`] and [`crate::shops::service::storefront`]),
/// correlated with the statement's `shops` row; its arguments are the page size and the
/// offset. The order is [`shop_products`]'s, on the same `(shop, status, listed_at)` index.
pub struct ShopCards;

macro_rules! shop_cards {
    ($agg:literal, $array:literal, $text:literal) => {
        &[
            concat!(
                "(SELECT ",
                $agg,
                "(",
                $array,
                "(p.id, p.title, p.price_min, p.price_max, p.sales_count, p.cover_media_id))",
                $text,
                " FROM (SELECT id, title, price_min, price_max, sales_count, cover_media_id",
                " FROM products WHERE products.shop_id = shops.id AND products.status = 'listed'",
                " ORDER BY listed_at DESC, id DESC LIMIT "
            ),
            " OFFSET ",
            ") p)",
        ]
    };
}

// The aggregate takes the rows in the order of the ordered, limited sub-select it reads (SQLite
// runs the sub-select as a co-routine; PostgreSQL's aggregate reads its Limit node's output,
// the documented "sorted subquery" idiom). An ORDER BY inside the aggregate sorted the page a
// second time: ~20 % of the statement's time on SQLite (a temporary b-tree), 6 % of
// PostgreSQL's (`pgbench -M prepared`, 30.0k -> 31.8k statements/s). The storefront tests check
// the order, ties and pages included, on both backends.
impl JsonSql for ShopCards {
    const POSTGRES: &'static [&'static str] = shop_cards!("json_agg", "json_build_array", "::text");
    const SQLITE: &'static [&'static str] = shop_cards!("json_group_array", "json_array", "");
}

/// Listed products of a shop, newest first, optionally matching `q` and a category.
pub fn shop_products(
    conn: &mut DbConn,
    shop_id: i64,
    q: &str,
    category: Option<i64>,
    page: PageQuery,
    per_page: i64,
    known_total: Option<i64>,
) -> Result<Paginated<ProductCard>, AppError> {
    let pattern = like_pattern(&q.trim().to_lowercase());
    let has_q = !q.trim().is_empty();
    // Run on the backend's own connection: the multi-backend wrapper rebuilds a query's SQL
    // text on every execution, which showed in the storefront's profile.
    let (total, items) = crate::per_backend!(conn, |c| {
        let filtered = || {
            let mut b = products::table
                .filter(products::shop_id.eq(shop_id))
                .filter(products::status.eq("listed"))
                .into_boxed();
            if has_q {
                b = b.filter(lower(products::title).like(pattern.clone()).escape('\\'));
            }
            if let Some(cat) = category {
                b = b.filter(products::category_id.eq(cat));
            }
            b
        };
        let total: i64 = match known_total {
            Some(t) => t,
            None => filtered().count().get_result(c)?,
        };
        let items = filtered()
            .order((products::listed_at.desc(), products::id.desc()))
            .limit(per_page)
            .offset(page.offset(per_page))
            .select(ProductCard::as_select())
            .load(c)?;
        Ok::<_, diesel::result::Error>((total, items))
    })?;
    Ok(Paginated {
        items,
        page: page.number(),
        per_page,
        total,
    })
}

// ---------- moderators ----------

/// A product in a moderator's list, with its shop.
pub struct ModerationRow {
    pub product: Product,
    pub shop_name: String,
    pub shop_slug: String,
    pub hits: Vec<Hit>,
}

fn require_moderator(me: &SessionUser) -> Result<(), AppError> {
    if me.has_role(Role::Moderator) {
        Ok(())
    } else {
        Err(AppError::Forbidden("error.403.body"))
    }
}

/// Products for moderators: the review queue (`pending_review`, oldest first) or a search.
pub fn moderation_list(
    conn: &mut DbConn,
    me: &SessionUser,
    queue: bool,
    q: &str,
    page: PageQuery,
) -> Result<Paginated<ModerationRow>, AppError> {
    require_moderator(me)?;
    let pattern = like_pattern(&q.trim().to_lowercase());
    let has_q = !q.trim().is_empty();
    let filtered = || {
        let mut b = products::table.inner_join(shops::table).into_boxed();
        if queue {
            b = b.filter(products::status.eq("pending_review"));
        } else {
            b = b.filter(products::status.ne("removed"));
        }
        if has_q {
            b = b.filter(
                products::title
                    .like(pattern.clone())
                    .escape('\\')
                    .or(shops::name.like(pattern.clone()).escape('\\')),
            );
        }
        b
    };
    let total: i64 = filtered().count().get_result(conn)?;
    let ordered = if queue {
        filtered().order(products::updated_at.asc())
    } else {
        filtered().order(products::id.desc())
    };
    let rows: Vec<(Product, String, String)> = ordered
        .limit(PER_PAGE)
        .offset(page.offset(PER_PAGE))
        .select((Product::as_select(), shops::name, shops::slug))
        .load(conn)?;
    let mut items = Vec::new();
    for (product, shop_name, shop_slug) in rows {
        let hits = last_hits(conn, product.id)?;
        items.push(ModerationRow {
            product,
            shop_name,
            shop_slug,
            hits,
        });
    }
    Ok(Paginated {
        items,
        page: page.number(),
        per_page: PER_PAGE,
        total,
    })
}

/// A moderator's decision about a product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject,
    Delist,
    Relist,
}

impl Decision {
    fn transition(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Decision::Approve => ("pending_review", "listed", "product.approve"),
            Decision::Reject => ("pending_review", "rejected", "product.reject"),
            Decision::Delist => ("listed", "delisted", "product.delist"),
            Decision::Relist => ("delisted", "listed", "product.relist"),
        }
    }
    fn key(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Reject => "reject",
            Decision::Delist => "delist",
            Decision::Relist => "relist",
        }
    }
}

/// Applies a moderator's decision with a compare-and-set on the product's status, writes the
/// audit log and emails the shop's official account, all in one transaction.
pub fn moderate(
    conn: &mut DbConn,
    me: &SessionUser,
    id: i64,
    decision: Decision,
    reason: &str,
    now: NaiveDateTime,
) -> Result<(), AppError> {
    require_moderator(me)?;
    let reason = reason.trim();
    let needs_reason = matches!(decision, Decision::Reject | Decision::Delist);
    if needs_reason && !(4..=500).contains(&reason.chars().count()) {
        return Err(AppError::field("reason", "reason_length"));
    }
    let (from, to, action) = decision.transition();
    write_tx(conn, |c| {
        let row: Option<(Product, Shop, String, Option<String>)> = products::table
            .inner_join(shops::table.inner_join(users::table))
            .filter(products::id.eq(id))
            .select((
                Product::as_select(),
                Shop::as_select(),
                users::email,
                users::locale,
            ))
            .first(c)
            .optional()?;
        let (product, shop, email, locale) = row.ok_or(AppError::NotFound)?;
        let mut q =
            diesel::update(products::table.find(id).filter(products::status.eq(from))).into_boxed();
        if decision == Decision::Relist {
            q = q.filter(products::delisted_by_platform.eq(true));
        }
        let n = q
            .set((
                products::status.eq(to),
                products::status_reason.eq(if needs_reason { reason } else { "" }),
                products::delisted_by_platform.eq(decision == Decision::Delist),
                products::updated_at.eq(now),
            ))
            .execute(c)?;
        if n == 0 {
            return Err(AppError::Conflict("product.changed"));
        }
        if to == "listed" {
            diesel::update(products::table.find(id))
                .set(products::listed_at.eq(Some(now)))
                .execute(c)?;
            super::search::reindex(c, id, &product.title, &product.subtitle)?;
        }
        accounts::audit_shop(
            c,
            Some(me.id),
            action,
            "product",
            Some(id),
            Some(shop.id),
            reason,
        )?;
        let l = locale
            .as_deref()
            .and_then(Locale::parse)
            .unwrap_or_default();
        let decision_text =
            i18n::t(l, &format!("product.decision.{}", decision.key())).into_owned();
        mail::enqueue(
            c,
            &Outgoing {
                to: &email,
                kind: "product_decision",
                subject: i18n::tf(
                    l,
                    "mail.product.subject",
                    &[("title", &product.title), ("decision", &decision_text)],
                ),
                body: i18n::tf(
                    l,
                    "mail.product.body",
                    &[
                        ("shop", &shop.name),
                        ("title", &product.title),
                        ("decision", &decision_text),
                        ("reason", if reason.is_empty() { "—" } else { reason }),
                    ],
                ),
            },
        )
    })
}

// ---------- platform search ----------

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);

// ---------- images ----------

pub const MAX_IMAGES: usize = 8;
pub const MAX_IMAGE_BYTES: usize = 5 * 1024 * 1024;
/// Thumbnails are square JPEGs of this size (grid and cover).
pub const THUMB_PX: u32 = 400;

/// Decodes an image (bounded in size and memory, so a crafted file can not exhaust the
/// server) and renders its square thumbnail as JPEG. Fails on anything that is not a real
/// PNG, JPEG, GIF or WebP image.
pub fn make_thumbnail(bytes: &[u8]) -> Result<Vec<u8>, &'static str> {
    if accounts::sniff_image(bytes).is_none() {
        return Err("image_type");
    }
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|_| "image_type")?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(8000);
    limits.max_image_height = Some(8000);
    limits.max_alloc = Some(256 * 1024 * 1024);
    reader.limits(limits);
    let img = reader.decode().map_err(|_| "image_type")?;
    let thumb = img
        .resize_to_fill(THUMB_PX, THUMB_PX, image::imageops::FilterType::Triangle)
        .to_rgb8();
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 82)
        .encode_image(&thumb)
        .map_err(|_| "image_type")?;
    Ok(out)
}

/// (image id, full media id, thumbnail media id) in display order; the first is the cover.
pub fn images_of(
    conn: &mut DbConn,
    product_id: i64,
) -> Result<Vec<(i64, i64, Option<i64>)>, AppError> {
    use crate::db::schema::product_images as pi;
    Ok(crate::per_backend!(conn, |c| pi::table
        .filter(pi::product_id.eq(product_id))
        .order((pi::position, pi::id))
        .select((pi::id, pi::media_id, pi::thumb_media_id))
        .load(c))?)
}

/// Keeps the product's cover (the first image's thumbnail) and its gallery text in step with
/// its images; every change of images ends here, in the same transaction.
fn refresh_cover(c: &mut DbConn, product_id: i64) -> Result<(), AppError> {
    let images = images_of(c, product_id)?;
    let cover = images
        .first()
        .and_then(|(_, full, thumb)| thumb.or(Some(*full)));
    let gallery = super::model::gallery_text(images.iter().map(|(_, f, t)| (*f, *t)));
    diesel::update(products::table.find(product_id))
        .set((
            products::cover_media_id.eq(cover),
            products::gallery.eq(gallery),
        ))
        .execute(c)?;
    Ok(())
}

/// Adds images to a product: every file is checked (type by content, size, decodable) and
/// thumbnailed before anything is written; at most `MAX_IMAGES` per product.
pub fn add_images(
    conn: &mut DbConn,
    me: &SessionUser,
    id: i64,
    files: &[Vec<u8>],
    now: NaiveDateTime,
) -> Result<(), AppError> {
    use crate::db::schema::product_images as pi;
    let m = require_shop_role(conn, me, ShopRole::Operator)?;
    own_product(conn, &m, id)?;
    if files.is_empty() {
        return Err(AppError::field("images", "images_missing"));
    }
    let existing = images_of(conn, id)?.len();
    if existing + files.len() > MAX_IMAGES {
        return Err(AppError::field("images", "images_too_many"));
    }
    let mut ready = Vec::new();
    for f in files {
        if f.len() > MAX_IMAGE_BYTES {
            return Err(AppError::field("images", "image_too_large"));
        }
        let content_type =
            accounts::sniff_image(f).ok_or(AppError::field("images", "image_type"))?;
        let thumb = make_thumbnail(f).map_err(|c| AppError::field("images", c))?;
        ready.push((content_type, f, thumb));
    }
    write_tx(conn, |c| {
        for (position, (content_type, full, thumb)) in (existing as i64..).zip(ready.iter()) {
            let full_id = accounts::store_media(c, me.id, content_type, full, now)?;
            let thumb_id = accounts::store_media(c, me.id, "image/jpeg", thumb, now)?;
            diesel::insert_into(pi::table)
                .values((
                    pi::product_id.eq(id),
                    pi::media_id.eq(full_id),
                    pi::thumb_media_id.eq(Some(thumb_id)),
                    pi::position.eq(position),
                ))
                .execute(c)?;
        }
        refresh_cover(c, id)
    })
}

/// Removes one image, or makes it the cover.
pub fn change_image(
    conn: &mut DbConn,
    me: &SessionUser,
    id: i64,
    image_id: i64,
    make_cover: bool,
) -> Result<(), AppError> {
    use crate::db::schema::product_images as pi;
    let m = require_shop_role(conn, me, ShopRole::Operator)?;
    own_product(conn, &m, id)?;
    write_tx(conn, |c| {
        let found: i64 = pi::table
            .find(image_id)
            .filter(pi::product_id.eq(id))
            .count()
            .get_result(c)?;
        if found == 0 {
            return Err(AppError::NotFound);
        }
        if make_cover {
            diesel::update(pi::table.filter(pi::product_id.eq(id)))
                .set(pi::position.eq(pi::position + 1))
                .execute(c)?;
            diesel::update(pi::table.find(image_id))
                .set(pi::position.eq(0i64))
                .execute(c)?;
        } else {
            diesel::delete(pi::table.find(image_id)).execute(c)?;
        }
        refresh_cover(c, id)
    })
}

// ---------- SKU CSV ----------

pub const CSV_MAX_ROWS: usize = 5000;

/// Guards spreadsheet apps against formulas hidden in text cells.
pub fn csv_safe(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

/// All SKUs of the caller's shop as CSV: sku_code, product_id, product_title, variant, price,
/// list_price, stock (prices in yuan).
pub fn export_skus_csv(conn: &mut DbConn, me: &SessionUser) -> Result<Vec<u8>, AppError> {
    let m = require_shop_role(conn, me, ShopRole::Operator)?;
    let rows: Vec<(Sku, String)> = skus::table
        .inner_join(products::table)
        .filter(skus::shop_id.eq(m.shop.id))
        .filter(products::status.ne("removed"))
        .order((skus::product_id, skus::position))
        .select((Sku::as_select(), products::title))
        .load(conn)?;
    let mut w = csv::Writer::from_writer(Vec::new());
    let err = |e: csv::Error| AppError::internal(e);
    w.write_record([
        "sku_code",
        "product_id",
        "product_title",
        "variant",
        "price",
        "list_price",
        "stock",
    ])
    .map_err(err)?;
    for (s, title) in rows {
        w.write_record([
            csv_safe(&s.code),
            s.product_id.to_string(),
            csv_safe(&title),
            csv_safe(&s.label()),
            s.price_input(),
            s.list_price_input(),
            s.stock.to_string(),
        ])
        .map_err(err)?;
    }
    w.into_inner()
        .map_err(|e| AppError::internal(e.to_string()))
}

/// One bad row of an import: its line number in the file and what is wrong (an i18n key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvError {
    pub line: u64,
    pub message: &'static str,
    pub value: String,
}

impl CsvError {
    pub fn new(line: u64, message: &'static str, value: &str) -> CsvError {
        CsvError {
            line,
            message,
            value: value.chars().take(60).collect(),
        }
    }
}

/// An uploaded CSV read for an import: the position of each wanted column (by header name),
/// every non-empty record with its line number (at most `CSV_MAX_ROWS`), and the lines that
/// could not be read. A file that is not CSV or lacks a `required` column is refused whole.
pub struct CsvInput {
    /// Column positions, in the order of `required` then `optional`.
    pub cols: Vec<Option<usize>>,
    pub rows: Vec<(u64, csv::StringRecord)>,
    /// Unreadable lines; the importer adds its own problems and writes nothing unless empty.
    pub errors: Vec<CsvError>,
}

pub fn read_csv(
    data: &[u8],
    required: &[&str],
    optional: &[&str],
    missing: &'static str,
) -> Result<CsvInput, Vec<CsvError>> {
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(data);
    let headers = rdr
        .headers()
        .map_err(|_| vec![CsvError::new(1, "csv.not_csv", "")])?
        .clone();
    let col = |name: &&str| {
        headers
            .iter()
            .position(|h| h.trim().trim_start_matches('\u{feff}') == *name)
    };
    let cols: Vec<Option<usize>> = required.iter().chain(optional).map(col).collect();
    if cols[..required.len()].iter().any(Option::is_none) {
        let found = headers.iter().collect::<Vec<_>>().join(",");
        return Err(vec![CsvError::new(1, missing, &found)]);
    }
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for (i, record) in rdr.records().enumerate() {
        let line = record
            .as_ref()
            .ok()
            .and_then(|r| r.position())
            .map(|p| p.line())
            .unwrap_or(i as u64 + 2);
        match record {
            Ok(r) if r.iter().all(str::is_empty) => {}
            Ok(_) | Err(_) if rows.len() + errors.len() >= CSV_MAX_ROWS => {
                errors.push(CsvError::new(line, "csv.too_many_rows", ""));
                break;
            }
            Ok(r) => rows.push((line, r)),
            Err(_) => errors.push(CsvError::new(line, "csv.not_csv", "")),
        }
    }
    Ok(CsvInput { cols, rows, errors })
}

/// Imports SKU prices and stock from CSV (columns by header: sku_code, price, stock and
/// optionally list_price). Every row is checked first; when any row is bad, all the problems
/// come back with their line numbers and nothing is written. Listed products whose prices
/// change are checked again.
pub fn import_skus_csv(
    conn: &mut DbConn,
    me: &SessionUser,
    data: &[u8],
    now: NaiveDateTime,
) -> Result<Result<usize, Vec<CsvError>>, AppError> {
    let m = require_shop_role(conn, me, ShopRole::Operator)?;
    let bad = CsvError::new;
    let input = match read_csv(
        data,
        &["sku_code", "price", "stock"],
        &["list_price"],
        "csv.missing_columns",
    ) {
        Ok(i) => i,
        Err(e) => return Ok(Err(e)),
    };
    let (c_code, c_price, c_stock, c_list) = (
        input.cols[0].unwrap_or(0),
        input.cols[1].unwrap_or(0),
        input.cols[2].unwrap_or(0),
        input.cols[3],
    );
    let codes: Vec<(String, i64, i64)> = skus::table
        .filter(skus::shop_id.eq(m.shop.id))
        .select((skus::code, skus::id, skus::product_id))
        .load(conn)?;
    let mut errors = input.errors;
    let mut updates: Vec<(i64, i64, i64, Option<i64>, i64)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (line, r) in input.rows {
        let get = |c: usize| r.get(c).unwrap_or("");
        let code = get(c_code).trim_start_matches('\'');
        let Some((_, sku_id, product_id)) = codes.iter().find(|(c, _, _)| c == code) else {
            errors.push(bad(line, "csv.unknown_sku", code));
            continue;
        };
        if !seen.insert(*sku_id) {
            errors.push(bad(line, "csv.duplicate_sku", code));
            continue;
        }
        let price = parse_yuan(get(c_price));
        if price.is_none() {
            errors.push(bad(line, "csv.bad_price", get(c_price)));
        }
        let list = match c_list.map(get).unwrap_or("") {
            "" => Some(None),
            v => parse_yuan(v).map(Some),
        };
        if list.is_none() {
            errors.push(bad(line, "csv.bad_price", c_list.map(get).unwrap_or("")));
        }
        let stock = get(c_stock)
            .parse::<i64>()
            .ok()
            .filter(|s| (0..=10_000_000).contains(s));
        if stock.is_none() {
            errors.push(bad(line, "csv.bad_stock", get(c_stock)));
        }
        if let (Some(p), Some(l), Some(s)) = (price, list, stock) {
            updates.push((*sku_id, *product_id, p, l, s));
        }
    }
    if !errors.is_empty() {
        return Ok(Err(errors));
    }
    let n = updates.len();
    write_tx(conn, |c| {
        let mut touched: Vec<i64> = Vec::new();
        for (sku_id, product_id, price, list, stock) in &updates {
            diesel::update(skus::table.find(sku_id).filter(skus::shop_id.eq(m.shop.id)))
                .set((
                    skus::price_fen.eq(price),
                    skus::list_price_fen.eq(list),
                    skus::stock.eq(stock),
                    skus::updated_at.eq(now),
                ))
                .execute(c)?;
            if !touched.contains(product_id) {
                touched.push(*product_id);
            }
        }
        for product_id in touched {
            refresh_price_range(c, product_id)?;
            let status: String = products::table
                .find(product_id)
                .select(products::status)
                .first(c)?;
            if status == "listed" {
                check_and_apply(c, &m, product_id, now)?;
            }
        }
        Ok::<_, AppError>(())
    })?;
    Ok(Ok(n))
}
