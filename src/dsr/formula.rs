//! The scoring formulas as pure functions (DOMAIN.md, "Buyer ratings" and "Shop experience
//! score"), each unit-tested against hand-computed examples. The job gathers the numbers with
//! a handful of aggregate queries and applies these.

use super::rules::ScoreRules;

/// "Higher/lower than peers by x": a signed fraction, positive above the category mean:
/// (shop − mean) / (max − mean) above it, −(mean − shop) / (mean − min) below it. `None` for a
/// category of one shop. Mean, max and min are over the category's shops with a DSR.
pub fn vs_peers(shop: f64, peers: &[f64]) -> Option<f64> {
    Peers::of(peers).and_then(|p| p.vs(shop))
}

/// The mean, maximum and minimum of a category's values, worked out once for all its shops.
#[derive(Debug, Clone, Copy)]
pub struct Peers {
    mean: f64,
    max: f64,
    min: f64,
}

impl Peers {
    /// `None` with fewer than two peers (nothing to compare with).
    pub fn of(peers: &[f64]) -> Option<Peers> {
        if peers.len() < 2 {
            return None;
        }
        Some(Peers {
            mean: peers.iter().sum::<f64>() / peers.len() as f64,
            max: peers.iter().copied().fold(f64::MIN, f64::max),
            min: peers.iter().copied().fold(f64::MAX, f64::min),
        })
    }

    /// [`vs_peers`] of one shop's value.
    pub fn vs(&self, shop: f64) -> Option<f64> {
        let Peers { mean, max, min } = *self;
        Some(if shop > mean && max > mean {
            (shop - mean) / (max - mean)
        } else if shop < mean && mean > min {
            -(mean - shop) / (mean - min)
        } else {
            0.0
        })
    }
}

/// Values this close count as equal (relative, or absolute below 1): the same rate summed in
/// another order (PostgreSQL adds up in parallel) or carried on from yesterday's running sums
/// differs in its last bits, which must not break a tie between shops.
pub const TIE: f64 = 1e-9;

fn same(a: f64, b: f64) -> bool {
    (a - b).abs() <= TIE * a.abs().max(b.abs()).max(1.0)
}

/// Percent rank of each value among `values`: the share of the *other* values that are
/// worse, a tie counting half (so tied shops share the middle of their places: when every
/// shop has the same defect rate, all sit at 0.5, not at the bottom). The best gets 1, the
/// worst 0; a lone value gets 0.5 (nothing to compare with). Values within [`TIE`] of the
/// first of a run of close values tie.
pub fn percent_ranks(values: &[f64], higher_is_better: bool) -> Vec<f64> {
    let n = values.len();
    if n == 1 {
        return vec![0.5];
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    // Each value's class: equal classes tie, classes ascend with the values.
    let mut class = vec![0usize; n];
    let mut sorted = Vec::with_capacity(n);
    let (mut k, mut first) = (0, order.first().map(|&i| values[i]).unwrap_or(0.0));
    for &i in &order {
        if !same(first, values[i]) {
            k += 1;
            first = values[i];
        }
        class[i] = k;
        sorted.push(k);
    }
    class
        .iter()
        .map(|&v| {
            let below = sorted.partition_point(|&x| x < v);
            let above = n - sorted.partition_point(|&x| x <= v);
            let ties = n - below - above - 1;
            let worse = if higher_is_better { below } else { above };
            (worse as f64 + 0.5 * ties as f64) / (n - 1) as f64
        })
        .collect()
}

/// Maps a percent rank onto the points scale (3.0–5.0 by default).
pub fn points(rank: f64, r: &ScoreRules) -> f64 {
    r.points_min + (r.points_max - r.points_min) * rank.clamp(0.0, 1.0)
}

/// Bayesian average toward the category mean: (n·x + m·c) / (n + m).
pub fn smooth(n: f64, x: f64, m: f64, c: f64) -> f64 {
    if n + m <= 0.0 {
        return c;
    }
    (n * x + m * c) / (n + m)
}

/// Recency weight of a day `age` days before the scored day.
pub fn decay(age_days: i64, half_life_days: f64) -> f64 {
    if half_life_days <= 0.0 {
        return 1.0;
    }
    0.5f64.powf(age_days as f64 / half_life_days)
}

/// Median of the values (mean of the middle two for an even count).
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}

pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The tier a score puts a shop in; `unrated` without a score.
pub fn tier(score: Option<f64>, r: &ScoreRules) -> &'static str {
    match score {
        None => "unrated",
        Some(s) if s >= r.tier_boost => "boost",
        Some(s) if s >= r.tier_restricted => "normal",
        Some(s) if s >= r.tier_barred => "restricted",
        Some(s) if s >= r.tier_clearance => "barred",
        Some(_) => "watch",
    }
}

/// Consecutive days below the clearance threshold, given yesterday's count.
pub fn low_days(previous: i64, score: Option<f64>, r: &ScoreRules) -> i64 {
    match score {
        Some(s) if s < r.tier_clearance => previous + 1,
        _ => 0,
    }
}

/// Whether a run of low days clears the shop.
pub fn clears(low_days: i64, r: &ScoreRules) -> bool {
    r.clearance_days > 0 && low_days >= r.clearance_days
}

/// The weighted sum of the three dimensions' points; a dimension without any metric counts
/// as the middle of the scale.
pub fn weighted_score(dims: [Option<f64>; 3], r: &ScoreRules) -> f64 {
    let mid = (r.points_min + r.points_max) / 2.0;
    let [p, l, s] = dims.map(|d| d.unwrap_or(mid));
    r.weight_product * p + r.weight_logistics * l + r.weight_service * s
}

/// Shipping credit of one order: by hours from payment to shipping (`None`: not shipped).
pub fn ship_credit(hours: Option<f64>, r: &ScoreRules) -> f64 {
    match hours {
        None => 0.0,
        Some(h) => r
            .ship_credit
            .iter()
            .find(|(bound, _)| h <= *bound as f64)
            .map(|(_, c)| *c)
            .unwrap_or(0.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> ScoreRules {
        ScoreRules::default_set()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn peer_comparison_above_and_below() {
        // Category DSRs 4.0, 4.5, 5.0: mean 4.5, max 5.0, min 4.0.
        let peers = [4.0, 4.5, 5.0];
        // 4.8 is above: (4.8 − 4.5) / (5.0 − 4.5) = 0.6 → "higher by 60.00%".
        assert!(close(vs_peers(4.8, &peers).unwrap(), 0.6));
        // 4.2 is below: (4.5 − 4.2) / (4.5 − 4.0) = 0.6 → "lower by 60.00%".
        assert!(close(vs_peers(4.2, &peers).unwrap(), -0.6));
        assert!(close(vs_peers(5.0, &peers).unwrap(), 1.0));
        assert!(close(vs_peers(4.0, &peers).unwrap(), -1.0));
        assert_eq!(vs_peers(4.5, &peers), Some(0.0));
        // A category of one shop shows no comparison; all equal gives 0.
        assert_eq!(vs_peers(4.9, &[4.9]), None);
        assert_eq!(vs_peers(4.9, &[4.9, 4.9]), Some(0.0));
    }

    #[test]
    fn percent_rank_with_ties() {
        // Higher is better: 1, 2, 2, 3.
        let r = percent_ranks(&[2.0, 1.0, 3.0, 2.0], true);
        // 2.0 beats one of the 3 others and ties one: (1 + 0.5) / 3; 1.0 beats none; 3.0 all.
        assert!(close(r[0], 0.5));
        assert!(close(r[1], 0.0));
        assert!(close(r[2], 1.0));
        assert!(close(r[3], 0.5));
        // Lower is better (a defect rate): 0.01 beats both; each 0.05 ties one: 0.5 / 2.
        let r = percent_ranks(&[0.05, 0.01, 0.05], false);
        assert!(close(r[0], 0.25));
        assert!(close(r[1], 1.0));
        assert!(close(r[2], 0.25));
        // Everyone equal: everyone in the middle.
        assert_eq!(percent_ranks(&[0.0, 0.0, 0.0], false), vec![0.5, 0.5, 0.5]);
        assert_eq!(percent_ranks(&[0.3], true), vec![0.5]);
        // The same rate summed in another order, or a zero left over as a rounding residue,
        // still ties; a real difference does not.
        let r = percent_ranks(&[0.1 + 0.2, 0.3, 1e-17, 0.0, 0.31], false);
        assert_eq!(r, vec![0.375, 0.375, 0.875, 0.875, 0.0]);
        assert!(percent_ranks(&[], true).is_empty());
    }

    #[test]
    fn points_map_ranks_onto_three_to_five() {
        let r = rules();
        assert!(close(points(0.0, &r), 3.0));
        assert!(close(points(1.0, &r), 5.0));
        assert!(close(points(0.25, &r), 3.5));
        assert!(close(points(2.0, &r), 5.0));
    }

    #[test]
    fn smoothing_pulls_small_shops_to_the_mean() {
        // 30 orders at 5.0 with m = 30 toward a category mean of 4.0 → 4.5.
        assert!(close(smooth(30.0, 5.0, 30.0, 4.0), 4.5));
        // 270 orders at 5.0 → (1350 + 120) / 300 = 4.9.
        assert!(close(smooth(270.0, 5.0, 30.0, 4.0), 4.9));
        assert!(close(smooth(0.0, 5.0, 30.0, 4.0), 4.0));
    }

    #[test]
    fn decay_halves_every_half_life() {
        assert!(close(decay(0, 30.0), 1.0));
        assert!(close(decay(30, 30.0), 0.5));
        assert!(close(decay(60, 30.0), 0.25));
        assert!(close(decay(10, 0.0), 1.0));
    }

    #[test]
    fn medians() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 10.0]), Some(3.5));
    }

    #[test]
    fn tiers_at_their_thresholds() {
        let r = rules();
        assert_eq!(tier(None, &r), "unrated");
        assert_eq!(tier(Some(4.8), &r), "boost");
        assert_eq!(tier(Some(4.79), &r), "normal");
        assert_eq!(tier(Some(4.3), &r), "normal");
        assert_eq!(tier(Some(4.29), &r), "restricted");
        assert_eq!(tier(Some(4.0), &r), "restricted");
        assert_eq!(tier(Some(3.99), &r), "barred");
        assert_eq!(tier(Some(3.2), &r), "barred");
        assert_eq!(tier(Some(3.19), &r), "watch");
    }

    #[test]
    fn consecutive_low_days_clear_the_shop() {
        let r = rules(); // 14 days below 3.2
        let mut days = 0;
        for _ in 0..13 {
            days = low_days(days, Some(3.1), &r);
            assert!(!clears(days, &r));
        }
        // One good day resets the count.
        assert_eq!(low_days(days, Some(3.5), &r), 0);
        assert_eq!(low_days(days, None, &r), 0);
        days = low_days(days, Some(3.0), &r);
        assert_eq!(days, 14);
        assert!(clears(days, &r));
    }

    #[test]
    fn dimensions_weigh_fifty_fifteen_thirty_five() {
        let r = rules();
        assert!(close(
            weighted_score([Some(5.0), Some(3.0), Some(4.0)], &r),
            0.5 * 5.0 + 0.15 * 3.0 + 0.35 * 4.0
        ));
        // A missing dimension counts as the middle (4.0).
        assert!(close(
            weighted_score([Some(5.0), None, Some(5.0)], &r),
            0.5 * 5.0 + 0.15 * 4.0 + 0.35 * 5.0
        ));
    }

    #[test]
    fn shipping_credit_by_hours() {
        let r = rules();
        assert!(close(ship_credit(Some(2.0), &r), 1.0));
        assert!(close(ship_credit(Some(24.0), &r), 1.0));
        assert!(close(ship_credit(Some(30.0), &r), 0.6));
        assert!(close(ship_credit(Some(47.9), &r), 0.3));
        assert!(close(ship_credit(Some(60.0), &r), 0.0));
        assert!(close(ship_credit(None, &r), 0.0));
    }

    #[test]
    fn rounding_to_two_decimals() {
        assert!(close(round2(4.675), 4.68) || close(round2(4.675), 4.67));
        assert!(close(round2(4.123), 4.12));
    }
}
