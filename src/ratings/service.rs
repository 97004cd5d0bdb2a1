//! Giving, listing and answering ratings. Which orders can be rated is this module's rule, so
//! it reads the order's state itself (a completed order of the caller, within the window).

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use serde::Deserialize;

use super::model::{mask, Histogram, Rating, RatingRow};
use crate::accounts::{service as accounts, SessionUser};
use crate::db::json_rows::{self, JsonRows, JsonSql};
use crate::db::schema::{order_lines, orders, rating_products, ratings, shops, users};
use crate::db::{is_unique_violation, write_tx, DbConn};
use crate::dsr::rules;
use crate::error::{AppError, FieldErrors};
use crate::pagination::{PageQuery, Paginated};
use crate::shops::model::ShopRole;
use crate::shops::service::require_shop_role;

pub const MAX_BODY: usize = 500;
pub const MAX_PHOTOS: usize = 3;
pub const PER_PAGE: i64 = 10;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RatingForm {
    #[serde(default)]
    pub described: i64,
    #[serde(default)]
    pub service: i64,
    #[serde(default)]
    pub logistics: i64,
    #[serde(default)]
    pub body: String,
}

impl RatingForm {
    fn check(&self) -> Result<(), AppError> {
        let mut errors = FieldErrors::new();
        for (field, v) in [
            ("described", self.described),
            ("service", self.service),
            ("logistics", self.logistics),
        ] {
            if !(1..=5).contains(&v) {
                errors.add(field, "stars");
            }
        }
        if self.body.trim().chars().count() > MAX_BODY {
            errors.add("body", "rating_body");
        }
        errors.into_result()
    }
}

/// Why an order can not be rated (an i18n key), if it can not.
#[derive(Debug, Clone)]
pub struct Rateable {
    pub order_id: i64,
    pub order_no: String,
    pub shop_id: i64,
    pub shop_name: String,
    /// (title, variant) of each line.
    pub items: Vec<(String, String)>,
    pub existing: Option<Rating>,
    /// The last moment a rating is accepted (completed + the rating window).
    pub open_until: Option<NaiveDateTime>,
    pub blocked: Option<&'static str>,
}

type OrderRow = (i64, String, i64, String, String, Option<NaiveDateTime>);

fn load_order(c: &mut DbConn, me: &SessionUser, order_no: &str) -> Result<OrderRow, AppError> {
    orders::table
        .inner_join(shops::table)
        .filter(orders::order_no.eq(order_no))
        .filter(orders::buyer_id.eq(me.id))
        .select((
            orders::id,
            orders::order_no,
            orders::shop_id,
            shops::name,
            orders::status,
            orders::completed_at,
        ))
        .first(c)
        .optional()?
        .ok_or(AppError::NotFound)
}

/// The rating page of one of the caller's orders: the existing rating, or whether one may be
/// given now.
pub fn rateable(
    conn: &mut DbConn,
    me: &SessionUser,
    order_no: &str,
    now: NaiveDateTime,
) -> Result<Rateable, AppError> {
    let (_, rules) = rules::current(conn)?;
    let (order_id, order_no, shop_id, shop_name, status, completed_at) =
        load_order(conn, me, order_no)?;
    let items = order_lines::table
        .filter(order_lines::order_id.eq(order_id))
        .order(order_lines::id)
        .select((order_lines::title, order_lines::sku_label))
        .load(conn)?;
    let existing = ratings::table
        .filter(ratings::order_id.eq(order_id))
        .select(Rating::as_select())
        .first(conn)
        .optional()?;
    let open_until = completed_at.map(|t| t + Duration::days(rules.rating_days));
    let blocked = if existing.is_some() {
        Some("rating.already")
    } else if status != "completed" {
        Some("rating.not_completed")
    } else if open_until.is_some_and(|u| now > u) {
        Some("rating.window_closed")
    } else {
        None
    };
    Ok(Rateable {
        order_id,
        order_no,
        shop_id,
        shop_name,
        items,
        existing,
        open_until,
        blocked,
    })
}

/// Rates one of the caller's completed orders, once. `month` is the platform calendar month
/// of `now` (the repeat-buyer cap counts per month).
pub fn rate(
    conn: &mut DbConn,
    me: &SessionUser,
    order_no: &str,
    form: &RatingForm,
    photos: &[(String, Vec<u8>)],
    now: NaiveDateTime,
    month: &str,
) -> Result<i64, AppError> {
    form.check()?;
    if photos.len() > MAX_PHOTOS {
        return Err(AppError::field("photos", "rating_photos"));
    }
    write_tx(conn, |c| {
        let r = rateable(c, me, order_no, now)?;
        if let Some(why) = r.blocked {
            return Err(AppError::Conflict(why));
        }
        let mut ids = Vec::new();
        for (ct, bytes) in photos {
            ids.push(accounts::store_media(c, me.id, ct, bytes, now)?.to_string());
        }
        // The rating's place among this buyer's ratings of this shop this month. Two at once
        // (PostgreSQL) collide on the unique (buyer, shop, month, seq): the loser takes the
        // next place; a collision on the order means it was rated meanwhile.
        let mut placed = false;
        for _ in 0..5 {
            let seq = ratings::table
                .filter(ratings::buyer_id.eq(me.id))
                .filter(ratings::shop_id.eq(r.shop_id))
                .filter(ratings::month.eq(month))
                .select(diesel::dsl::max(ratings::seq))
                .first::<Option<i64>>(c)?
                .unwrap_or(0)
                + 1;
            let inserted = c.transaction(|c| {
                diesel::insert_into(ratings::table)
                    .values((
                        ratings::order_id.eq(r.order_id),
                        ratings::shop_id.eq(r.shop_id),
                        ratings::buyer_id.eq(me.id),
                        ratings::described.eq(form.described),
                        ratings::service.eq(form.service),
                        ratings::logistics.eq(form.logistics),
                        ratings::body.eq(form.body.trim()),
                        ratings::photo_media_ids.eq(ids.join(",")),
                        ratings::month.eq(month),
                        ratings::seq.eq(seq),
                        ratings::created_at.eq(now),
                    ))
                    .execute(c)
            });
            match inserted {
                Ok(_) => {
                    placed = true;
                    break;
                }
                Err(e) if is_unique_violation(&e) => {
                    let rated: i64 = ratings::table
                        .filter(ratings::order_id.eq(r.order_id))
                        .count()
                        .get_result(c)?;
                    if rated > 0 {
                        return Err(AppError::Conflict("rating.already"));
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        if !placed {
            return Err(AppError::Conflict("rating.busy"));
        }
        let id: i64 = ratings::table
            .filter(ratings::order_id.eq(r.order_id))
            .select(ratings::id)
            .first(c)?;
        let mut products: Vec<i64> = order_lines::table
            .filter(order_lines::order_id.eq(r.order_id))
            .select(order_lines::product_id)
            .load(c)?;
        products.sort_unstable();
        products.dedup();
        for p in products {
            diesel::insert_into(rating_products::table)
                .values((
                    rating_products::product_id.eq(p),
                    rating_products::rating_id.eq(id),
                    rating_products::described.eq(form.described),
                    rating_products::created_at.eq(now),
                ))
                .execute(c)?;
        }
        Ok(id)
    })
}

/// A page of a product's ratings, newest first, with the buyers' handles: the JSON rows of
/// [`product_ratings`] (see [`crate::db::json_rows`]). Its arguments are the product,
/// the page size and the offset. The (product, time, id) index of `rating_products` gives the
/// page in order without sorting the product's ratings.
pub struct ProductRatingsPage;

macro_rules! product_ratings_page {
    ($agg:literal, $array:literal, $text:literal) => {
        &[
            concat!(
                "(SELECT ", $agg, "(", $array, "(", $array,
                "(r.id, r.order_id, r.shop_id, r.described, r.service, r.logistics, r.body, ",
                "r.photo_media_ids, r.reply, r.replied_at, r.created_at), u.handle) ",
                "ORDER BY p.created_at DESC, p.rating_id DESC)", $text,
                " FROM (SELECT rating_id, created_at FROM rating_products WHERE product_id = "
            ),
            " ORDER BY created_at DESC, rating_id DESC LIMIT ",
            " OFFSET ",
            ") p INNER JOIN ratings r ON r.id = p.rating_id INNER JOIN users u ON u.id = r.buyer_id)",
        ]
    };
}

impl JsonSql for ProductRatingsPage {
    const POSTGRES: &'static [&'static str] =
        product_ratings_page!("json_agg", "json_build_array", "::text");
    const SQLITE: &'static [&'static str] =
        product_ratings_page!("json_group_array", "json_array", "");
}

/// What the product page shows of a product's ratings.
#[derive(Debug)]
pub struct ProductRatings {
    /// Star counts (as described).
    pub histogram: Histogram,
    /// The asked-for page, newest first.
    pub page: Paginated<RatingRow>,
}

/// How long a product's ratings are reused by the product page ([`AppState::product_ratings`]):
/// a new rating or reply shows at once on the node that took it (it clears that node's cache)
/// and within this on the others.
///
/// [`AppState::product_ratings`]: crate::web::AppState::product_ratings
pub const PRODUCT_RATINGS_TTL: std::time::Duration = std::time::Duration::from_secs(15);

/// A product's star counts and page `page` of its ratings, in one statement (the page as JSON
/// rows, see [`crate::db::json_rows`]). It does not check that the product is public: the
/// product page reads the product itself first.
pub fn product_ratings(
    conn: &mut DbConn,
    product_id: i64,
    page: PageQuery,
) -> Result<ProductRatings, AppError> {
    use rating_products as rp;
    let rows =
        JsonRows::<ProductRatingsPage, 3>::new([product_id, PER_PAGE, page.offset(PER_PAGE)]);
    let (s1, s2, s3, s4, s5, json): (i64, i64, i64, i64, i64, Option<String>) =
        crate::per_backend!(conn, |c| {
            let stars = |n: i64| {
                rp::table
                    .filter(rp::product_id.eq(product_id))
                    .filter(rp::described.eq(n))
                    .count()
                    .single_value()
                    .assume_not_null()
            };
            diesel::select((stars(1), stars(2), stars(3), stars(4), stars(5), rows)).get_result(c)
        })?;
    let histogram = Histogram {
        counts: [s1, s2, s3, s4, s5],
    };
    let rated: Vec<(Rating, String)> = json_rows::parse(json.as_deref())?;
    let items = rated
        .into_iter()
        .map(|(rating, handle)| RatingRow {
            rating,
            buyer: mask(&handle),
            order_no: String::new(),
            items: String::new(),
        })
        .collect();
    Ok(ProductRatings {
        page: Paginated {
            items,
            page: page.number(),
            per_page: PER_PAGE,
            total: histogram.total(),
        },
        histogram,
    })
}

/// The caller's shop's ratings for the merchant page, newest first; `unreplied` keeps only
/// those without a reply.
pub fn shop_ratings(
    conn: &mut DbConn,
    me: &SessionUser,
    unreplied: bool,
    page: PageQuery,
) -> Result<Paginated<RatingRow>, AppError> {
    let m = require_shop_role(conn, me, ShopRole::CustomerService)?;
    let mut count = ratings::table
        .filter(ratings::shop_id.eq(m.shop.id))
        .into_boxed();
    let mut q = ratings::table
        .inner_join(users::table)
        .inner_join(orders::table)
        .filter(ratings::shop_id.eq(m.shop.id))
        .into_boxed();
    if unreplied {
        count = count.filter(ratings::replied_at.is_null());
        q = q.filter(ratings::replied_at.is_null());
    }
    let total: i64 = count.count().get_result(conn)?;
    let rows: Vec<(Rating, String, String)> = q
        .order((ratings::created_at.desc(), ratings::id.desc()))
        .limit(PER_PAGE)
        .offset(page.offset(PER_PAGE))
        .select((Rating::as_select(), users::handle, orders::order_no))
        .load(conn)?;
    let order_ids: Vec<i64> = rows.iter().map(|r| r.0.order_id).collect();
    let lines: Vec<(i64, String)> = order_lines::table
        .filter(order_lines::order_id.eq_any(&order_ids))
        .order(order_lines::id)
        .select((order_lines::order_id, order_lines::title))
        .load(conn)?;
    let items = rows
        .into_iter()
        .map(|(rating, handle, order_no)| {
            let titles: Vec<&str> = lines
                .iter()
                .filter(|(o, _)| *o == rating.order_id)
                .map(|(_, t)| t.as_str())
                .collect();
            RatingRow {
                items: titles.join("、"),
                rating,
                buyer: mask(&handle),
                order_no,
            }
        })
        .collect();
    Ok(Paginated {
        items,
        page: page.number(),
        per_page: PER_PAGE,
        total,
    })
}

/// The shop replies to a rating of its own, once (compare-and-set on "no reply yet").
pub fn reply(
    conn: &mut DbConn,
    me: &SessionUser,
    id: i64,
    text: &str,
    now: NaiveDateTime,
) -> Result<(), AppError> {
    let text = text.trim();
    if !(2..=MAX_BODY).contains(&text.chars().count()) {
        return Err(AppError::field("reply", "rating_reply"));
    }
    write_tx(conn, |c| {
        let m = require_shop_role(c, me, ShopRole::CustomerService)?;
        let n = diesel::update(
            ratings::table
                .find(id)
                .filter(ratings::shop_id.eq(m.shop.id))
                .filter(ratings::replied_at.is_null()),
        )
        .set((
            ratings::reply.eq(text),
            ratings::replied_by.eq(Some(me.id)),
            ratings::replied_at.eq(Some(now)),
        ))
        .execute(c)?;
        if n == 1 {
            return Ok(());
        }
        let own: i64 = ratings::table
            .filter(ratings::id.eq(id))
            .filter(ratings::shop_id.eq(m.shop.id))
            .count()
            .get_result(c)?;
        Err(if own == 0 {
            AppError::NotFound
        } else {
            AppError::Conflict("rating.already_replied")
        })
    })
}
