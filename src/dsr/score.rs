//! The scores as other features read them (badges, the authorized-account rule, the
//! recommended shops): depends on nothing but the database, so any feature may call it.

use diesel::prelude::*;

use super::rules;
use crate::db::schema::{dsr_recommendations as rec, dsr_snapshots as snap, shops};
use crate::db::DbConn;
use crate::error::AppError;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = snap)]
pub struct Snapshot {
    pub shop_id: i64,
    pub day: String,
    pub rule_version: i64,
    pub category_id: i64,
    pub rating_count: i64,
    pub described: Option<f64>,
    pub service: Option<f64>,
    pub logistics: Option<f64>,
    pub described_vs: Option<f64>,
    pub service_vs: Option<f64>,
    pub logistics_vs: Option<f64>,
    pub valid_orders: i64,
    pub raw_score: Option<f64>,
    pub score: Option<f64>,
    pub product_points: Option<f64>,
    pub logistics_points: Option<f64>,
    pub service_points: Option<f64>,
    pub metrics: String,
    pub tier: String,
    pub low_days: i64,
}

/// One DSR number as a badge shows it.
#[derive(Debug, Clone)]
pub struct DsrItem {
    /// i18n key of the dimension.
    pub key: &'static str,
    /// One decimal, e.g. "4.8".
    pub value: String,
    /// "12.34" (percent, two decimals) when there is a comparison.
    pub vs: Option<String>,
    /// Above the category mean (shown red), below (green), level.
    pub direction: &'static str,
}

/// What a storefront's or product page's badge shows of the newest snapshot.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = snap)]
pub struct Badge {
    pub described: Option<f64>,
    pub service: Option<f64>,
    pub logistics: Option<f64>,
    pub described_vs: Option<f64>,
    pub service_vs: Option<f64>,
    pub logistics_vs: Option<f64>,
    pub score: Option<f64>,
}

impl Badge {
    /// The three DSR numbers with their peer comparison (empty without counted ratings).
    pub fn dsr_items(&self) -> Vec<DsrItem> {
        [
            ("dsr.described", self.described, self.described_vs),
            ("dsr.service", self.service, self.service_vs),
            ("dsr.logistics", self.logistics, self.logistics_vs),
        ]
        .into_iter()
        .filter_map(|(key, v, vs)| {
            v.map(|v| DsrItem {
                key,
                value: format!("{v:.1}"),
                vs: vs.map(|x| format!("{:.2}", x.abs() * 100.0)),
                direction: match vs {
                    Some(x) if x > 0.0 => "up",
                    Some(x) if x < 0.0 => "down",
                    _ => "level",
                },
            })
        })
        .collect()
    }
    pub fn score_text(&self) -> Option<String> {
        self.score.map(|s| format!("{s:.2}"))
    }
}

impl Snapshot {
    fn badge(&self) -> Badge {
        Badge {
            described: self.described,
            service: self.service,
            logistics: self.logistics,
            described_vs: self.described_vs,
            service_vs: self.service_vs,
            logistics_vs: self.logistics_vs,
            score: self.score,
        }
    }
    /// The three DSR numbers with their peer comparison (empty without counted ratings).
    pub fn dsr_items(&self) -> Vec<DsrItem> {
        self.badge().dsr_items()
    }
    pub fn score_text(&self) -> Option<String> {
        self.badge().score_text()
    }
}

/// `.left_join(newest_snapshot_join!())` on a query with `shops` joins each shop's newest
/// snapshot, so a page reads the [`Badge`] (`Option::<Badge>::as_select()`) with the shop in
/// one statement instead of a statement of its own (a round trip on PostgreSQL).
#[macro_export]
macro_rules! newest_snapshot_join {
    () => {{
        use $crate::db::schema::{dsr_snapshots as snap, shops};
        let newer = diesel::alias!(snap as newest);
        snap::table.on(snap::id.nullable().eq(newer
            .filter(newer.field(snap::shop_id).eq(shops::id))
            .order(newer.field(snap::day).desc())
            .select(newer.field(snap::id))
            .single_value()))
    }};
}

/// The shop's newest snapshot.
pub fn latest(conn: &mut DbConn, shop_id: i64) -> Result<Option<Snapshot>, AppError> {
    Ok(snap::table
        .filter(snap::shop_id.eq(shop_id))
        .order(snap::day.desc())
        .select(Snapshot::as_select())
        .first(conn)
        .optional()?)
}

/// The score the authorized-account rule looks at (None: not enough data yet).
pub fn current_score(conn: &mut DbConn, shop_id: i64) -> Result<Option<f64>, AppError> {
    Ok(latest(conn, shop_id)?.and_then(|s| s.score))
}

/// The minimum score for authorizing accounts, from the rules in force.
pub fn authorize_min_score(conn: &mut DbConn) -> Result<f64, AppError> {
    Ok(rules::current(conn)?.1.authorize_min_score)
}

/// A recommended shop as the order page's box shows it.
#[derive(Debug, Clone)]
pub struct Recommended {
    pub slug: String,
    pub name: String,
    pub score: f64,
}

/// The recommended shops for a buyer of `shop_id`: its category's, without itself.
pub fn recommended_for(conn: &mut DbConn, shop_id: i64) -> Result<Vec<Recommended>, AppError> {
    let category: Option<i64> = shops::table
        .find(shop_id)
        .select(shops::main_category_id)
        .first(conn)
        .optional()?;
    match category {
        Some(c) => recommended(conn, c, shop_id),
        None => Ok(Vec::new()),
    }
}

/// The newest day's recommended shops of a category, without `except`.
pub fn recommended(
    conn: &mut DbConn,
    category_id: i64,
    except: i64,
) -> Result<Vec<Recommended>, AppError> {
    let day: Option<String> = rec::table.select(diesel::dsl::max(rec::day)).first(conn)?;
    let Some(day) = day else {
        return Ok(Vec::new());
    };
    let rows: Vec<(String, String, f64)> = rec::table
        .inner_join(shops::table)
        .filter(rec::day.eq(day))
        .filter(rec::category_id.eq(category_id))
        .filter(rec::shop_id.ne(except))
        .filter(shops::status.eq("active"))
        .order(rec::rank)
        .select((shops::slug, shops::name, rec::score))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(slug, name, score)| Recommended { slug, name, score })
        .collect())
}
