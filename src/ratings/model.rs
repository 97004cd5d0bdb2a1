use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::ratings;

/// Deserialize: the product page reads ratings as JSON rows ([`crate::db::json_rows`]), in the
/// order of these fields.
#[derive(Debug, Clone, Queryable, Selectable, serde::Deserialize)]
#[diesel(table_name = ratings)]
pub struct Rating {
    pub id: i64,
    pub order_id: i64,
    pub shop_id: i64,
    pub described: i64,
    pub service: i64,
    pub logistics: i64,
    pub body: String,
    pub photo_media_ids: String,
    pub reply: String,
    #[serde(deserialize_with = "crate::db::json_rows::time_opt")]
    pub replied_at: Option<NaiveDateTime>,
    #[serde(deserialize_with = "crate::db::json_rows::time")]
    pub created_at: NaiveDateTime,
}

impl Rating {
    pub fn photos(&self) -> Vec<i64> {
        self.photo_media_ids
            .split(',')
            .filter_map(|s| s.parse().ok())
            .collect()
    }
    pub fn replied(&self) -> bool {
        self.replied_at.is_some()
    }
}

/// A rating as a list shows it: with the buyer's masked name and what was bought.
#[derive(Debug, Clone)]
pub struct RatingRow {
    pub rating: Rating,
    /// e.g. `b***r`: buyers are not exposed on public pages.
    pub buyer: String,
    pub order_no: String,
    pub items: String,
}

/// Masks a handle for public pages: first and last character.
pub fn mask(handle: &str) -> String {
    let chars: Vec<char> = handle.chars().collect();
    match chars.len() {
        0 => "***".into(),
        1 | 2 => format!("{}***", chars[0]),
        n => format!("{}***{}", chars[0], chars[n - 1]),
    }
}

/// Star counts 1…5 (index 0 is one star) and the number of ratings.
#[derive(Debug, Clone, Default)]
pub struct Histogram {
    pub counts: [i64; 5],
}

impl Histogram {
    pub fn total(&self) -> i64 {
        self.counts.iter().sum()
    }
    pub fn mean(&self) -> Option<f64> {
        let t = self.total();
        (t > 0).then(|| {
            self.counts
                .iter()
                .enumerate()
                .map(|(i, n)| (i as i64 + 1) * n)
                .sum::<i64>() as f64
                / t as f64
        })
    }
    /// Rows 5★ first: (stars, count, percent of all, rounded).
    pub fn rows(&self) -> Vec<(i64, i64, i64)> {
        let t = self.total().max(1);
        (1..=5)
            .rev()
            .map(|s| {
                let n = self.counts[(s - 1) as usize];
                (s, n, (n * 100 + t / 2) / t)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_handles() {
        assert_eq!(mask("buyer"), "b***r");
        assert_eq!(mask("ab"), "a***");
        assert_eq!(mask("小明同学"), "小***学");
    }

    #[test]
    fn histogram_mean_and_rows() {
        let h = Histogram {
            counts: [1, 0, 0, 1, 2],
        };
        assert_eq!(h.total(), 4);
        assert_eq!(h.mean(), Some((1.0 + 4.0 + 10.0) / 4.0));
        assert_eq!(h.rows()[0], (5, 2, 50));
        assert_eq!(h.rows()[4], (1, 1, 25));
        assert_eq!(Histogram::default().mean(), None);
    }
}
