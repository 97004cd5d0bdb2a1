//! Scale data for the nightly scoring: `haodian seed --shops N --ratings M`.
//!
//! N shops (each with its official account) and, spread over them unevenly (a few big shops,
//! many small ones), M ratings on as many completed orders plus 30% more orders that were not
//! rated, with shipments and deliveries, quality and other refunds, and complaints (some ruled
//! merchant-at-fault). Each shop has a hidden "quality" that shapes its shipping speed, stars,
//! refund and complaint rates, so the scores spread out as they would. Rows are generated and
//! bulk-inserted batch by batch (memory stays flat); deterministic for given N and M.
//!
//! Left out, because scoring never reads them: order lines, products, rating-to-product links.

use chrono::{Datelike, Duration, NaiveDateTime};
use diesel::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::db::schema::{checkouts, complaints, orders, ratings, refunds, shops, users};
use crate::db::{write_tx, DbConn};
use crate::error::AppError;

/// Orders per statement (22 columns: within SQLite's 32,766 bound parameters).
const ROWS: usize = 1000;
/// Orders planned and counted per step (progress is reported by the million).
const STEP_ORDERS: usize = 20_000;

/// A shop's hidden quality in [0, 1] (deterministic per shop).
fn quality(shop: usize) -> f64 {
    ((shop as u64).wrapping_mul(2_654_435_761) % 1000) as f64 / 999.0
}

fn stars(rng: &mut StdRng, q: f64) -> i64 {
    let x = 2.6 + 2.6 * q + rng.gen_range(-1.6..1.4);
    x.round().clamp(1.0, 5.0) as i64
}

pub fn seed(
    conn: &mut DbConn,
    n_shops: usize,
    n_ratings: usize,
    tz: chrono_tz::Tz,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<String>, AppError> {
    let now = chrono::Utc::now().naive_utc();
    let opened = now - Duration::days(400);
    let hash = crate::accounts::password::hash(super::DEMO_PASSWORD)?;
    let categories = crate::shops::service::top_categories(conn)?;
    let cats: Vec<i64> = categories.iter().map(|c| c.id).collect();
    if cats.is_empty() {
        return Err(AppError::Internal(
            "no categories (migrations not run?)".into(),
        ));
    }
    let tag = users::table.count().get_result::<i64>(conn)?;

    // Shops and their official accounts.
    let mut shop_ids: Vec<i64> = Vec::with_capacity(n_shops);
    for first in (0..n_shops).step_by(ROWS) {
        let last = (first + ROWS).min(n_shops);
        let ids = write_tx(conn, |c| {
            let owners = insert_users(
                c,
                &format!("sc{tag}"),
                "评分压测店主",
                first..last,
                &hash,
                opened,
            )?;
            let new_shops: Vec<_> = owners
                .iter()
                .enumerate()
                .map(|(k, uid)| {
                    let i = first + k;
                    (
                        shops::slug.eq(format!("sc{tag}-{i}")),
                        shops::name.eq(format!("评分压测店 {i}")),
                        shops::description.eq(""),
                        shops::main_category_id.eq(cats[i % cats.len()]),
                        shops::entity_type.eq("individual"),
                        shops::official_user_id.eq(*uid),
                        shops::status.eq("active"),
                        shops::created_at.eq(opened),
                        shops::updated_at.eq(opened),
                    )
                })
                .collect();
            crate::per_backend!(c, |c| diesel::insert_into(shops::table)
                .values(&new_shops)
                .execute(c))?;
            Ok::<_, AppError>(
                shops::table
                    .filter(shops::official_user_id.eq_any(&owners))
                    .order(shops::id)
                    .select(shops::id)
                    .load::<i64>(c)?,
            )
        })?;
        shop_ids.extend(ids);
    }
    progress(&format!("{} shops", shop_ids.len()));

    // Buyers, each with one checkout that all their orders hang off.
    let n_buyers = (n_ratings / 500).clamp(1000, 50_000);
    let mut buyers: Vec<(i64, i64)> = Vec::with_capacity(n_buyers);
    for first in (0..n_buyers).step_by(ROWS) {
        let last = (first + ROWS).min(n_buyers);
        let rows = write_tx(conn, |c| {
            let ids = insert_users(
                c,
                &format!("sb{tag}"),
                "压测买家",
                first..last,
                &hash,
                opened,
            )?;
            let new_checkouts: Vec<_> = ids
                .iter()
                .map(|id| {
                    (
                        checkouts::buyer_id.eq(*id),
                        checkouts::idem_key.eq(format!("scale-{tag}-{id}")),
                        checkouts::total_fen.eq(0i64),
                        checkouts::created_at.eq(opened),
                    )
                })
                .collect();
            crate::per_backend!(c, |c| diesel::insert_into(checkouts::table)
                .values(&new_checkouts)
                .execute(c))?;
            Ok::<_, AppError>(
                checkouts::table
                    .filter(checkouts::buyer_id.eq_any(&ids))
                    .order(checkouts::buyer_id)
                    .select((checkouts::buyer_id, checkouts::id))
                    .load::<(i64, i64)>(c)?,
            )
        })?;
        buyers.extend(rows);
    }
    progress(&format!("{} buyers", buyers.len()));

    // Orders: the first n_ratings are completed and rated, the rest (30% more) are not rated.
    let n_orders = n_ratings + n_ratings * 3 / 10;
    let mut rng = StdRng::seed_from_u64(2026);
    // Each rating's buyer is picked round-robin per (shop, month), so a buyer rates a shop a
    // second time in a month only after every other buyer did, and its place (seq) follows.
    // The map is bounded by shops × months, not by ratings.
    let mut per_month: std::collections::HashMap<(usize, u32), usize> = Default::default();
    let mut made = (0usize, 0usize, 0usize, 0usize);
    let mut next_report = 1_000_000;
    // One transaction for the whole load, with the secondary indexes (and on PostgreSQL the
    // foreign keys) of the tables it fills dropped first and made again at the end: a sort
    // per index and one join per key instead of millions of random B-tree inserts and
    // per-row trigger queries, as PostgreSQL's "Populating a Database" advises. DDL is
    // transactional on both backends: a failure leaves the tables as they were.
    let deferred = deferrable(conn, BULK_TABLES)?;
    let (on, off) = bulk_settings(conn.backend());
    crate::db::with_setting(conn, on, off, |conn| {
        write_tx(conn, |conn| {
            for (drop, _) in &deferred {
                crate::per_backend!(conn, |c| diesel::sql_query(drop.as_str()).execute(c))?;
            }
            for first in (0..n_orders).step_by(STEP_ORDERS) {
                let last = (first + STEP_ORDERS).min(n_orders);
                let counts = {
                    let c = &mut *conn;
                    let mut counts = (0usize, 0usize, 0usize);
                    for start in (first..last).step_by(ROWS) {
                        let end = (start + ROWS).min(last);
                        let plan: Vec<Planned> = (start..end)
                            .map(|j| {
                                let mut p =
                                    plan_order(&mut rng, j, n_ratings, &shop_ids, &buyers, now);
                                if let Some((at, ..)) = p.rating {
                                    let month = crate::dsr::job::platform_day(tz, at);
                                    let key =
                                        (p.shop_index, month.year_ce().1 * 12 + month.month0());
                                    let k = per_month.entry(key).or_default();
                                    let pick =
                                        (p.shop_index * 7919 + key.1 as usize * 104_729 + *k)
                                            % buyers.len();
                                    // A buyer comes round again only after all the others.
                                    p.seq = (*k / buyers.len()) as i64 + 1;
                                    *k += 1;
                                    (p.buyer, p.checkout) = buyers[pick];
                                }
                                p
                            })
                            .collect();
                        let rows: Vec<_> = plan
                            .iter()
                            .enumerate()
                            .map(|(k, p)| {
                                (
                                    orders::order_no.eq(format!("9{tag:03}{:012}", start + k)),
                                    orders::checkout_id.eq(p.checkout),
                                    orders::buyer_id.eq(p.buyer),
                                    orders::shop_id.eq(p.shop),
                                    orders::status.eq(p.status),
                                    orders::items_fen.eq(p.total),
                                    orders::shipping_fen.eq(0i64),
                                    orders::total_fen.eq(p.total),
                                    orders::refunded_fen.eq(if p.refund.is_some() {
                                        p.total
                                    } else {
                                        0
                                    }),
                                    orders::recipient.eq("压测"),
                                    orders::phone.eq("13800000000"),
                                    orders::region.eq("上海市 上海市 徐汇区"),
                                    orders::address_detail.eq("压测路 1 号"),
                                    orders::buyer_note.eq(""),
                                    orders::cancel_reason.eq(""),
                                    orders::created_at.eq(p.paid),
                                    orders::pay_deadline.eq(p.paid),
                                    orders::paid_at.eq(Some(p.paid)),
                                    orders::shipped_at.eq(p.shipped),
                                    orders::delivered_at.eq(p.delivered),
                                    orders::completed_at.eq(p.completed),
                                    orders::updated_at.eq(p.paid),
                                )
                            })
                            .collect();
                        // The new ids by order number (the order of RETURNING rows is not promised).
                        // Not read back by `id > max(id)`: on a young PostgreSQL table that range got
                        // a sequential scan per batch.
                        let returned: Vec<(i64, String)> = crate::per_backend!(c, |c| {
                            diesel::insert_into(orders::table)
                                .values(&rows)
                                .returning((orders::id, orders::order_no))
                                .get_results(c)
                        })?;
                        let mut ids = vec![0i64; plan.len()];
                        for (id, no) in returned {
                            let k = no[no.len() - 12..].parse::<usize>().map_err(|e| {
                                AppError::Internal(format!("order number {no}: {e}"))
                            })? - start;
                            ids[k] = id;
                        }
                        let mut new_ratings = Vec::new();
                        let mut new_refunds = Vec::new();
                        let mut new_complaints = Vec::new();
                        for (p, id) in plan.iter().zip(&ids) {
                            if let Some((at, d, s, l)) = p.rating {
                                let month = crate::dsr::job::platform_day(tz, at)
                                    .format("%Y-%m")
                                    .to_string();
                                new_ratings.push((
                                    ratings::order_id.eq(*id),
                                    ratings::shop_id.eq(p.shop),
                                    ratings::buyer_id.eq(p.buyer),
                                    ratings::described.eq(d),
                                    ratings::service.eq(s),
                                    ratings::logistics.eq(l),
                                    ratings::body.eq(""),
                                    ratings::month.eq(month),
                                    ratings::seq.eq(p.seq),
                                    ratings::created_at.eq(at),
                                ));
                            }
                            if let Some((at, category)) = p.refund {
                                let decided = at + Duration::hours(2 + (id % 60));
                                new_refunds.push((
                                    refunds::order_id.eq(*id),
                                    refunds::shop_id.eq(p.shop),
                                    refunds::buyer_id.eq(p.buyer),
                                    refunds::kind.eq("refund_only"),
                                    refunds::reason.eq(if category == "quality" {
                                        "quality_problem"
                                    } else {
                                        "changed_mind"
                                    }),
                                    refunds::reason_category.eq(category),
                                    refunds::amount_fen.eq(p.total),
                                    refunds::status.eq("refunded"),
                                    refunds::respond_by.eq(at + Duration::hours(48)),
                                    refunds::requested_at.eq(at),
                                    refunds::decided_at.eq(Some(decided)),
                                    refunds::completed_at.eq(Some(decided)),
                                ));
                            }
                            if let Some((at, fault)) = p.complaint {
                                new_complaints.push((
                                    complaints::shop_id.eq(p.shop),
                                    complaints::buyer_id.eq(p.buyer),
                                    complaints::order_id.eq(Some(*id)),
                                    complaints::reason.eq("late_shipping"),
                                    complaints::body.eq("压测投诉"),
                                    complaints::status.eq("ruled"),
                                    complaints::merchant_at_fault.eq(Some(fault)),
                                    complaints::created_at.eq(at),
                                    complaints::ruled_at.eq(Some(at + Duration::days(2))),
                                ));
                            }
                        }
                        crate::per_backend!(c, |c| diesel::insert_into(ratings::table)
                            .values(&new_ratings)
                            .execute(c))?;
                        if !new_refunds.is_empty() {
                            crate::per_backend!(c, |c| diesel::insert_into(refunds::table)
                                .values(&new_refunds)
                                .execute(c))?;
                        }
                        if !new_complaints.is_empty() {
                            crate::per_backend!(c, |c| diesel::insert_into(complaints::table)
                                .values(&new_complaints)
                                .execute(c))?;
                        }
                        counts.0 += new_ratings.len();
                        counts.1 += new_refunds.len();
                        counts.2 += new_complaints.len();
                    }
                    counts
                };
                made.0 += last - first;
                made.1 += counts.0;
                made.2 += counts.1;
                made.3 += counts.2;
                if made.0 >= next_report || last == n_orders {
                    progress(&format!("{} orders, {} ratings", made.0, made.1));
                    next_report += 1_000_000;
                }
            }
            for (_, definition) in deferred.iter().rev() {
                crate::per_backend!(conn, |c| diesel::sql_query(definition.as_str()).execute(c))?;
            }
            progress(&format!("{} indexes and keys made again", deferred.len()));
            Ok::<_, AppError>(())
        })
    })?;
    Ok(vec![format!(
        "scoring scale data: {} shops, {} buyers, {} orders, {} ratings, {} refunds, {} complaints",
        shop_ids.len(),
        buyers.len(),
        made.0,
        made.1,
        made.2,
        made.3
    )])
}

/// The tables the scale load fills with millions of rows.
const BULK_TABLES: &[&str] = &["orders", "ratings", "refunds", "complaints"];

/// What the bulk load may drop on `tables` and make again: the secondary indexes (not those
/// behind a primary key or a constraint) and, on PostgreSQL, the foreign keys, each as (drop
/// statement, create statement), foreign keys first.
fn deferrable(conn: &mut DbConn, tables: &[&str]) -> Result<Vec<(String, String)>, AppError> {
    #[derive(QueryableByName)]
    struct Ddl {
        #[diesel(sql_type = diesel::sql_types::Text)]
        drop_sql: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        make_sql: String,
    }
    let list = tables
        .iter()
        .map(|t| format!("'{t}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = match conn.backend() {
        crate::db::Backend::Postgres => format!(
            "SELECT 'ALTER TABLE ' || conrelid::regclass || ' DROP CONSTRAINT ' || quote_ident(conname) AS drop_sql, \
               'ALTER TABLE ' || conrelid::regclass || ' ADD CONSTRAINT ' || quote_ident(conname) \
                 || ' ' || pg_get_constraintdef(oid) AS make_sql, 0 AS k, conname AS name \
             FROM pg_constraint WHERE contype = 'f' AND conrelid::regclass::text IN ({list}) \
             UNION ALL \
             SELECT 'DROP INDEX ' || quote_ident(indexname), indexdef, 1, indexname FROM pg_indexes \
             WHERE schemaname = current_schema() AND tablename IN ({list}) \
               AND indexname NOT IN (SELECT conname FROM pg_constraint) ORDER BY k, name"
        ),
        // Automatic indexes (of UNIQUE / PRIMARY KEY clauses) have no SQL and stay.
        crate::db::Backend::Sqlite => format!(
            "SELECT 'DROP INDEX \"' || name || '\"' AS drop_sql, sql AS make_sql FROM sqlite_master \
             WHERE type = 'index' AND tbl_name IN ({list}) AND sql IS NOT NULL ORDER BY name"
        ),
    };
    let rows = crate::per_backend!(conn, |c| diesel::sql_query(&sql).load::<Ddl>(c))?;
    Ok(rows.into_iter().map(|d| (d.drop_sql, d.make_sql)).collect())
}

/// The session settings for the bulk load and the statements that put them back: more memory
/// for the index builds; on SQLite a page cache large enough for the rows in flight.
fn bulk_settings(backend: crate::db::Backend) -> (&'static str, &'static str) {
    match backend {
        crate::db::Backend::Postgres => (
            "SET maintenance_work_mem = '256MB'",
            "RESET maintenance_work_mem",
        ),
        crate::db::Backend::Sqlite => ("PRAGMA cache_size = -262144", "PRAGMA cache_size = -2000"),
    }
}

/// Inserts the accounts `{prefix}_{i}` for i in `range` (verified, demo password); returns their
/// ids in order.
fn insert_users(
    c: &mut DbConn,
    prefix: &str,
    name: &str,
    range: std::ops::Range<usize>,
    hash: &str,
    at: NaiveDateTime,
) -> Result<Vec<i64>, AppError> {
    let handles: Vec<String> = range.clone().map(|i| format!("{prefix}_{i}")).collect();
    let rows: Vec<_> = handles
        .iter()
        .zip(range)
        .map(|(handle, i)| {
            (
                users::email.eq(format!("{handle}@scale.haodian.cn")),
                users::handle.eq(handle),
                users::display_name.eq(format!("{name}{i}")),
                users::password_hash.eq(hash),
                users::bio.eq(""),
                users::email_verified_at.eq(Some(at)),
                users::password_changed_at.eq(at),
                users::created_at.eq(at),
                users::updated_at.eq(at),
            )
        })
        .collect();
    crate::per_backend!(c, |c| diesel::insert_into(users::table)
        .values(&rows)
        .execute(c))?;
    Ok(users::table
        .filter(users::handle.eq_any(&handles))
        .order(users::id)
        .select(users::id)
        .load(c)?)
}

/// One generated order and what happened to it.
struct Planned {
    shop: i64,
    shop_index: usize,
    /// The rating's place among its buyer's ratings of the shop that month.
    seq: i64,
    buyer: i64,
    checkout: i64,
    status: &'static str,
    total: i64,
    paid: NaiveDateTime,
    shipped: Option<NaiveDateTime>,
    delivered: Option<NaiveDateTime>,
    completed: Option<NaiveDateTime>,
    /// (when, described, service, logistics)
    rating: Option<(NaiveDateTime, i64, i64, i64)>,
    /// (when, reason category)
    refund: Option<(NaiveDateTime, &'static str)>,
    /// (when, merchant at fault)
    complaint: Option<(NaiveDateTime, bool)>,
}

fn plan_order(
    rng: &mut StdRng,
    j: usize,
    n_ratings: usize,
    shops: &[i64],
    buyers: &[(i64, i64)],
    now: NaiveDateTime,
) -> Planned {
    // Uneven shop sizes: a few shops get many orders, most get few.
    let s = ((shops.len() as f64) * rng.gen::<f64>().powf(1.8)) as usize % shops.len();
    let q = quality(s);
    let (buyer, checkout) = buyers[rng.gen_range(0..buyers.len())];
    let rated = j < n_ratings;
    // Rated orders were paid 12-185 days ago (completed and rated by now); the others
    // any time in the last 200 days.
    let days = if rated {
        rng.gen_range(12.0..185.0)
    } else {
        rng.gen_range(0.0..200.0)
    };
    let paid = now - Duration::seconds((days * 86_400.0) as i64);
    let total = if rng.gen_bool(0.03) {
        rng.gen_range(50..200)
    } else {
        rng.gen_range(500..50_000)
    };
    let ship_h = 2.0 + 46.0 * (1.0 - q) * rng.gen::<f64>() + rng.gen_range(0.0..6.0);
    let shipped = paid + Duration::minutes((ship_h * 60.0) as i64);
    let deliver_h = 20.0 + 80.0 * (1.0 - q) * rng.gen::<f64>() + rng.gen_range(0.0..20.0);
    let delivered = shipped + Duration::minutes((deliver_h * 60.0) as i64);
    let completed = delivered + Duration::days(3);
    let (status, shipped, delivered, completed) = if rated || completed < now {
        ("completed", Some(shipped), Some(delivered), Some(completed))
    } else if delivered < now {
        ("delivered", Some(shipped), Some(delivered), None)
    } else if shipped < now {
        ("shipped", Some(shipped), None, None)
    } else {
        ("paid", None, None, None)
    };
    let rating = rated.then(|| {
        let at = completed.unwrap_or(now) + Duration::hours(rng.gen_range(1..200));
        (at.min(now), stars(rng, q), stars(rng, q), stars(rng, q))
    });
    let refund_p = 0.01 + 0.06 * (1.0 - q);
    let refund = (rng.gen::<f64>() < refund_p).then(|| {
        let at = paid + Duration::hours(rng.gen_range(30..200));
        let category = if rng.gen_bool(0.6) {
            "quality"
        } else {
            "other"
        };
        (at.min(now), category)
    });
    let complaint = (rng.gen::<f64>() < 0.002 + 0.02 * (1.0 - q)).then(|| {
        let at = paid + Duration::hours(rng.gen_range(24..300));
        (at.min(now), rng.gen_bool(0.5))
    });
    Planned {
        shop: shops[s],
        shop_index: s,
        seq: 1,
        buyer,
        checkout,
        status,
        total,
        paid,
        shipped,
        delivered,
        completed,
        rating,
        refund,
        complaint,
    }
}
