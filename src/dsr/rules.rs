//! The scoring rules: every weight, window and threshold of the ratings, the DSR and the
//! experience score, as versioned data (`score_rules` rows; the newest is in force). The
//! default set lives in `default_rules.json` and is seeded by the migration; a test keeps the
//! two equal.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::db::schema::score_rules;
use crate::db::DbConn;
use crate::error::AppError;

/// The repository's default rule set.
pub const DEFAULT_JSON: &str = include_str!("default_rules.json");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreRules {
    /// A completed order may be rated within this many days.
    pub rating_days: i64,
    /// DSR: mean of counted ratings over this many days.
    pub dsr_window_days: i64,
    /// Per calendar month only the first N ratings one buyer gives one shop count.
    pub dsr_monthly_cap: i64,
    /// Experience-score window (days ending with the scored day).
    pub window_days: i64,
    /// The lagged window for refunds and complaints: days T-from … T-to.
    pub lag_from_days: i64,
    pub lag_to_days: i64,
    /// Recency weighting: a day `a` days old weighs 0.5^(a / half_life).
    pub half_life_days: f64,
    /// Below this many valid orders in the window the score is "not enough data".
    pub min_valid_orders: i64,
    /// Orders below this amount (分) are not valid orders.
    pub valid_order_min_fen: i64,
    /// Bayesian smoothing weight m in (n·x + m·c) / (n + m).
    pub smoothing_m: f64,
    /// Percent ranks map linearly onto points_min … points_max.
    pub points_min: f64,
    pub points_max: f64,
    pub weight_product: f64,
    pub weight_logistics: f64,
    pub weight_service: f64,
    /// A rating with "as described" at or below this is a bad review.
    pub bad_review_max_stars: i64,
    /// (hours after payment, credit): shipped within the first bound earns its credit, …;
    /// later or never earns 0. Bounds ascending.
    pub ship_credit: Vec<(i64, f64)>,
    pub tier_boost: f64,
    pub tier_restricted: f64,
    pub tier_barred: f64,
    pub tier_clearance: f64,
    /// Consecutive days below `tier_clearance` after which the shop is cleared.
    pub clearance_days: i64,
    pub recommend_per_category: i64,
    /// Recommended shops must have paid orders in this many recent days.
    pub recommend_recent_days: i64,
    /// An authorized account may be added only while the shop's score is at least this.
    pub authorize_min_score: f64,
}

impl ScoreRules {
    pub fn default_set() -> ScoreRules {
        // The file is part of the binary and covered by a test.
        #[allow(clippy::expect_used)]
        serde_json::from_str(DEFAULT_JSON).expect("default_rules.json parses")
    }

    /// Checks a rule set before it is stored (admins edit it later).
    pub fn validate(&self) -> Result<(), &'static str> {
        let w = self.weight_product + self.weight_logistics + self.weight_service;
        if (w - 1.0).abs() > 1e-6 {
            return Err("weights_sum");
        }
        if self.points_min >= self.points_max {
            return Err("points_range");
        }
        if self.lag_from_days >= self.lag_to_days || self.window_days < 1 {
            return Err("windows");
        }
        if self.ship_credit.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err("ship_credit");
        }
        Ok(())
    }
}

/// The rules in force and their version.
pub fn current(conn: &mut DbConn) -> Result<(i64, ScoreRules), AppError> {
    let row: Option<(i64, String)> = score_rules::table
        .order(score_rules::id.desc())
        .select((score_rules::id, score_rules::params))
        .first(conn)
        .optional()?;
    match row {
        Some((id, json)) => Ok((id, parse(id, &json)?)),
        None => Err(AppError::Internal(
            "no score rules (migrations not run?)".into(),
        )),
    }
}

/// One stored version (to explain or recompute an old snapshot).
pub fn version(conn: &mut DbConn, id: i64) -> Result<ScoreRules, AppError> {
    let json: String = score_rules::table
        .find(id)
        .select(score_rules::params)
        .first(conn)
        .optional()?
        .ok_or(AppError::NotFound)?;
    parse(id, &json)
}

fn parse(id: i64, json: &str) -> Result<ScoreRules, AppError> {
    serde_json::from_str(json)
        .map_err(|e| AppError::Internal(format!("score rules version {id} do not parse: {e}")))
}

/// Stores a new version (it takes effect at once) and returns its id.
pub fn save(
    conn: &mut DbConn,
    rules: &ScoreRules,
    note: &str,
    by: Option<i64>,
    now: chrono::NaiveDateTime,
) -> Result<i64, AppError> {
    rules
        .validate()
        .map_err(|code| AppError::field("params", code))?;
    let json = serde_json::to_string(rules).map_err(AppError::internal)?;
    crate::db::write_tx(conn, |c| {
        diesel::insert_into(score_rules::table)
            .values((
                score_rules::params.eq(&json),
                score_rules::note.eq(note),
                score_rules::created_by.eq(by),
                score_rules::created_at.eq(now),
            ))
            .execute(c)?;
        Ok(score_rules::table
            .select(diesel::dsl::max(score_rules::id))
            .first::<Option<i64>>(c)?
            .unwrap_or(0))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_set_is_valid() {
        let r = ScoreRules::default_set();
        assert_eq!(r.validate(), Ok(()));
        assert_eq!(r.dsr_window_days, 180);
        assert_eq!(r.ship_credit[0], (24, 1.0));
    }

    #[test]
    fn migrations_seed_the_default_set() {
        for backend in ["sqlite", "postgres"] {
            let path = format!(
                "{}/migrations/{backend}/2026-11-30-000010_ratings_dsr/up.sql",
                env!("CARGO_MANIFEST_DIR")
            );
            let sql = std::fs::read_to_string(path).unwrap();
            let start = sql.find("VALUES ('").unwrap() + "VALUES ('".len();
            let end = start + sql[start..].find('\'').unwrap();
            let seeded: ScoreRules = serde_json::from_str(&sql[start..end]).unwrap();
            assert_eq!(seeded, ScoreRules::default_set(), "{backend}");
        }
    }
}
