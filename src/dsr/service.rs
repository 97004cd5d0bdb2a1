//! Reading the scores: a shop's latest snapshot (badges), its trend, the merchant's
//! explanation, the moderators' overview and the recommended shops.

use diesel::prelude::*;

use super::job::METRICS;
use super::rules::{self, ScoreRules};
pub use super::score::{DsrItem, Snapshot};
use crate::accounts::{Role, SessionUser};
use crate::db::schema::{categories, dsr_snapshots as snap, job_runs, shops};
use crate::db::DbConn;
use crate::error::AppError;
use crate::shops::service::membership;

/// One metric as the merchant page explains it.
#[derive(Debug, Clone)]
pub struct MetricLine {
    pub name: &'static str,
    pub dimension: &'static str,
    pub value: f64,
    pub num: f64,
    pub den: f64,
    /// Percent rank in the category, 0–100.
    pub rank: f64,
    pub points: f64,
    /// Score points lost against the best possible on this metric.
    pub cost: f64,
}

impl MetricLine {
    /// The value formatted for its kind (a rate as a percentage, a duration in hours).
    pub fn shown(&self) -> String {
        if self.name.ends_with("_hours") {
            format!("{:.1} h", self.value)
        } else {
            format!("{:.2}%", self.value * 100.0)
        }
    }
}

pub const DIMENSIONS: [&str; 3] = ["product", "logistics", "service"];

/// The metrics behind a snapshot, worst cost first (the first is what to improve first).
pub fn explain(s: &Snapshot, r: &ScoreRules) -> Vec<MetricLine> {
    let m: serde_json::Value = serde_json::from_str(&s.metrics).unwrap_or_default();
    let weights = [r.weight_product, r.weight_logistics, r.weight_service];
    let per_dim = |d: usize| {
        METRICS
            .iter()
            .filter(|(name, dim, _)| *dim == d && m.get(*name).is_some())
            .count()
            .max(1) as f64
    };
    let mut lines: Vec<MetricLine> = METRICS
        .iter()
        .filter_map(|&(name, dim, higher)| {
            let e = m.get(name)?;
            let num = |k: &str| e.get(k).and_then(serde_json::Value::as_f64).unwrap_or(0.0);
            let points = num("points");
            // A rate already at its best (no defects, everything shipped in time) can not be
            // improved, whatever its rank among tied peers.
            let value = num("value");
            let at_best = name.ends_with("_rate") && value <= 0.0 || higher && value >= 1.0;
            Some(MetricLine {
                name,
                dimension: DIMENSIONS[dim],
                value,
                num: num("num"),
                den: num("den"),
                rank: num("rank") * 100.0,
                points,
                cost: if at_best {
                    0.0
                } else {
                    (r.points_max - points) * weights[dim] / per_dim(dim)
                },
            })
        })
        .collect();
    lines.sort_by(|a, b| b.cost.total_cmp(&a.cost).then(a.name.cmp(b.name)));
    lines
}

/// What the merchant's score page shows.
pub struct MerchantView {
    pub shop_name: String,
    pub latest: Option<Snapshot>,
    pub metrics: Vec<MetricLine>,
    /// Up to 90 days, oldest first.
    pub trend: Vec<Snapshot>,
    pub rules: ScoreRules,
}

pub fn merchant_view(conn: &mut DbConn, me: &SessionUser) -> Result<MerchantView, AppError> {
    // Every member of the shop may see its scores.
    let m = membership(conn, me.id)?.ok_or(AppError::Forbidden("shop.no_shop"))?;
    let mut trend: Vec<Snapshot> = snap::table
        .filter(snap::shop_id.eq(m.shop.id))
        .order(snap::day.desc())
        .limit(90)
        .select(Snapshot::as_select())
        .load(conn)?;
    trend.reverse();
    let latest = trend.last().cloned();
    let rules = match &latest {
        Some(s) => rules::version(conn, s.rule_version)?,
        None => rules::current(conn)?.1,
    };
    let metrics = latest
        .as_ref()
        .map(|s| explain(s, &rules))
        .unwrap_or_default();
    Ok(MerchantView {
        shop_name: m.shop.name,
        latest,
        metrics,
        trend,
        rules,
    })
}

/// One category's score distribution on the newest scored day.
#[derive(Debug, Clone)]
pub struct CategoryDistribution {
    pub category: String,
    pub category_en: String,
    /// Shops per bucket of 0.2 from 3.0 (the last bucket includes 5.0).
    pub buckets: Vec<i64>,
    pub scored: i64,
    pub unrated: i64,
}

/// A shop on clearance watch.
#[derive(Debug, Clone)]
pub struct Watched {
    pub shop_id: i64,
    pub slug: String,
    pub name: String,
    pub score: f64,
    pub low_days: i64,
}

/// One run of the scoring job.
#[derive(Debug, Clone, Queryable)]
pub struct JobRun {
    pub period: String,
    pub status: String,
    pub node: String,
    pub started_at: chrono::NaiveDateTime,
    pub finished_at: Option<chrono::NaiveDateTime>,
    pub attempts: i64,
    pub detail: String,
}

impl JobRun {
    pub fn seconds(&self) -> Option<f64> {
        self.finished_at
            .map(|f| (f - self.started_at).num_milliseconds() as f64 / 1000.0)
    }
}

pub struct AdminView {
    pub day: Option<String>,
    pub distribution: Vec<CategoryDistribution>,
    pub watch: Vec<Watched>,
    pub runs: Vec<JobRun>,
    pub clearance_days: i64,
}

pub const BUCKETS: usize = 10;

pub fn admin_view(conn: &mut DbConn, me: &SessionUser) -> Result<AdminView, AppError> {
    if !me.has_role(Role::Moderator) {
        return Err(AppError::Forbidden("error.403.body"));
    }
    let (_, r) = rules::current(conn)?;
    let day: Option<String> = snap::table
        .select(diesel::dsl::max(snap::day))
        .first(conn)?;
    let runs: Vec<JobRun> = job_runs::table
        .filter(job_runs::job.eq(super::job::JOB))
        .order(job_runs::id.desc())
        .limit(30)
        .select((
            job_runs::period,
            job_runs::status,
            job_runs::node,
            job_runs::started_at,
            job_runs::finished_at,
            job_runs::attempts,
            job_runs::detail,
        ))
        .load(conn)?;
    let Some(d) = day.clone() else {
        return Ok(AdminView {
            day,
            distribution: Vec::new(),
            watch: Vec::new(),
            runs,
            clearance_days: r.clearance_days,
        });
    };
    let rows: Vec<(String, String, Option<f64>)> = snap::table
        .inner_join(categories::table.on(categories::id.eq(snap::category_id)))
        .filter(snap::day.eq(&d))
        .order((categories::sort_order, categories::id))
        .select((categories::name_zh, categories::name_en, snap::score))
        .load(conn)?;
    let mut distribution: Vec<CategoryDistribution> = Vec::new();
    for (category, category_en, score) in rows {
        if distribution.last().map(|c| &c.category) != Some(&category) {
            distribution.push(CategoryDistribution {
                category: category.clone(),
                category_en,
                buckets: vec![0; BUCKETS],
                scored: 0,
                unrated: 0,
            });
        }
        if let Some(c) = distribution.last_mut() {
            match score {
                Some(s) => {
                    let i = (((s - 3.0) / 0.2).floor().max(0.0) as usize).min(BUCKETS - 1);
                    c.buckets[i] += 1;
                    c.scored += 1;
                }
                None => c.unrated += 1,
            }
        }
    }
    let watch: Vec<(i64, String, String, Option<f64>, i64)> = snap::table
        .inner_join(shops::table)
        .filter(snap::day.eq(&d))
        .filter(snap::tier.eq_any(["watch", "cleared"]))
        .order((snap::low_days.desc(), snap::score.asc()))
        .limit(200)
        .select((
            shops::id,
            shops::slug,
            shops::name,
            snap::score,
            snap::low_days,
        ))
        .load(conn)?;
    Ok(AdminView {
        day,
        distribution,
        watch: watch
            .into_iter()
            .map(|(shop_id, slug, name, score, low_days)| Watched {
                shop_id,
                slug,
                name,
                score: score.unwrap_or(0.0),
                low_days,
            })
            .collect(),
        runs,
        clearance_days: r.clearance_days,
    })
}
