//! Penalty points arithmetic (违规积分): which penalty node one deduction reaches, the harshest
//! of them, the next node ahead, and the calendar year (platform time) points count toward.
//! Pure functions over the nodes, which are data (`penalty_nodes`).

use chrono::{Datelike, NaiveDateTime, TimeZone};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    /// No new listings, hidden from search and recommendations.
    Restrict,
    /// Storefront closed: nothing can be bought; open orders still ship and refund.
    Close,
    /// Cleared (清退) for good.
    Clear,
}

impl Action {
    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "restrict" => Some(Action::Restrict),
            "close" => Some(Action::Close),
            "clear" => Some(Action::Clear),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Restrict => "restrict",
            Action::Close => "close",
            Action::Clear => "clear",
        }
    }
}

/// One penalty node of a track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub track: String,
    /// Points at which the node is first reached.
    pub threshold: i64,
    /// 0: reached once; n: reached again every n points after `threshold`.
    pub repeat_every: i64,
    pub action: Action,
    pub days: i64,
    pub delist_all: bool,
}

impl Node {
    /// How many times a total of `points` has reached this node.
    fn times(&self, points: i64) -> i64 {
        if points < self.threshold {
            0
        } else if self.repeat_every <= 0 {
            1
        } else {
            (points - self.threshold) / self.repeat_every + 1
        }
    }
    /// The smallest total above `points` that reaches this node (again), if any.
    fn next_after(&self, points: i64) -> Option<i64> {
        if points < self.threshold {
            Some(self.threshold)
        } else if self.repeat_every > 0 {
            Some(self.threshold + self.times(points) * self.repeat_every)
        } else {
            None
        }
    }
    /// Orders nodes by harshness: the action, then the days, then delisting everything.
    fn severity(&self) -> (Action, i64, bool) {
        (self.action, self.days, self.delist_all)
    }
}

/// The nodes of `track` that a deduction from `before` to `after` points reaches.
pub fn reached<'a>(nodes: &'a [Node], track: &str, before: i64, after: i64) -> Vec<&'a Node> {
    nodes
        .iter()
        .filter(|n| n.track == track && n.times(after) > n.times(before))
        .collect()
}

/// The one node that applies to a deduction: the harshest it reaches (only that one applies).
pub fn applies<'a>(nodes: &'a [Node], track: &str, before: i64, after: i64) -> Option<&'a Node> {
    reached(nodes, track, before, after)
        .into_iter()
        .max_by_key(|n| n.severity())
}

/// The next node of `track` ahead of a total of `points`: (points at which it is reached, node).
pub fn next_node<'a>(nodes: &'a [Node], track: &str, points: i64) -> Option<(i64, &'a Node)> {
    nodes
        .iter()
        .filter(|n| n.track == track)
        .filter_map(|n| n.next_after(points).map(|at| (at, n)))
        .min_by_key(|(at, n)| (*at, std::cmp::Reverse(n.severity())))
}

/// The calendar year, in the platform's time zone, that points recorded at `now` count toward
/// (points reset at 31 Dec 24:00 platform time).
pub fn year_of(tz: chrono_tz::Tz, now: NaiveDateTime) -> i64 {
    i64::from(tz.from_utc_datetime(&now).year())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(track: &str, threshold: i64, repeat: i64, action: Action, days: i64) -> Node {
        Node {
            track: track.into(),
            threshold,
            repeat_every: repeat,
            action,
            days,
            delist_all: track == "serious" && threshold == 24,
        }
    }

    /// The default nodes of DOMAIN.md.
    fn defaults() -> Vec<Node> {
        vec![
            node("general", 12, 12, Action::Restrict, 7),
            node("serious", 12, 0, Action::Restrict, 7),
            node("serious", 24, 0, Action::Restrict, 14),
            node("serious", 36, 0, Action::Close, 21),
            node("serious", 48, 0, Action::Clear, 0),
        ]
    }

    #[test]
    fn a_deduction_below_the_first_node_reaches_nothing() {
        let n = defaults();
        assert!(applies(&n, "serious", 0, 11).is_none());
        assert!(applies(&n, "general", 4, 10).is_none());
        // Staying between nodes reaches nothing either.
        assert!(applies(&n, "serious", 12, 23).is_none());
    }

    #[test]
    fn reaching_a_node_exactly_applies_it() {
        let n = defaults();
        let hit = applies(&n, "serious", 0, 12).expect("node");
        assert_eq!((hit.action, hit.days), (Action::Restrict, 7));
        let hit = applies(&n, "serious", 12, 24).expect("node");
        assert_eq!(
            (hit.action, hit.days, hit.delist_all),
            (Action::Restrict, 14, true)
        );
    }

    #[test]
    fn crossing_several_nodes_at_once_applies_only_the_harshest() {
        let n = defaults();
        // 10 + 30 = 40 crosses 12, 24 and 36: the 21-day closure, not the restrictions.
        assert_eq!(reached(&n, "serious", 10, 40).len(), 3);
        let hit = applies(&n, "serious", 10, 40).expect("node");
        assert_eq!((hit.action, hit.days), (Action::Close, 21));
        // 0 + 48 reaches every node: clearance.
        assert_eq!(
            applies(&n, "serious", 0, 48).map(|h| h.action),
            Some(Action::Clear)
        );
        // Past 48 there is nothing more to reach.
        assert!(applies(&n, "serious", 48, 60).is_none());
    }

    #[test]
    fn the_general_track_repeats_every_twelve_points() {
        let n = defaults();
        for (before, after, hits) in [
            (0, 11, false),
            (0, 12, true),
            (11, 12, true),
            (12, 23, false),
            (20, 24, true),
            (24, 35, false),
            (30, 40, true),
            (0, 30, true),
        ] {
            assert_eq!(
                applies(&n, "general", before, after).is_some(),
                hits,
                "{before} -> {after}"
            );
        }
        // Crossing 12 and 24 in one deduction is still one 7-day restriction.
        let hit = applies(&n, "general", 0, 30).expect("node");
        assert_eq!((hit.action, hit.days), (Action::Restrict, 7));
    }

    #[test]
    fn the_tracks_are_separate() {
        let n = defaults();
        // 12 general points never reach a serious node and vice versa.
        assert!(reached(&n, "general", 0, 12)
            .iter()
            .all(|x| x.track == "general"));
        assert!(reached(&n, "serious", 0, 12)
            .iter()
            .all(|x| x.track == "serious"));
        assert!(applies(&n, "general", 0, 48).map(|h| h.action) == Some(Action::Restrict));
    }

    #[test]
    fn the_next_node_ahead() {
        let n = defaults();
        let (at, nd) = next_node(&n, "serious", 0).expect("next");
        assert_eq!((at, nd.days), (12, 7));
        let (at, nd) = next_node(&n, "serious", 30).expect("next");
        assert_eq!((at, nd.action), (36, Action::Close));
        assert!(next_node(&n, "serious", 48).is_none());
        let (at, _) = next_node(&n, "general", 12).expect("next");
        assert_eq!(at, 24);
        let (at, _) = next_node(&n, "general", 25).expect("next");
        assert_eq!(at, 36);
    }

    #[test]
    fn points_count_toward_the_platform_year() {
        let tz: chrono_tz::Tz = "Asia/Shanghai".parse().expect("tz");
        let at = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").expect("time");
        // 31 Dec 15:59:59 UTC is 23:59:59 in Shanghai: still that year.
        assert_eq!(year_of(tz, at("2026-12-31 15:59:59")), 2026);
        // One second later it is 1 Jan 00:00 there: the new year, points start from zero.
        assert_eq!(year_of(tz, at("2026-12-31 16:00:00")), 2027);
    }
}
