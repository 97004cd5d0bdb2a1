//! `haodian dsr score [--date D]`: the nightly scoring of platform day D.
//!
//! Set-based: four aggregate queries read everything the formulas need for every shop at
//! once (one pass over the ratings for the DSR, within the repeat-buyer cap kept as each
//! rating's `seq`, and the bad reviews; one pass over the orders for the paid, shipped and
//! delivered metrics; the lagged refunds and complaints with their orders; the median refund
//! handling time), plus yesterday's snapshots, every day weighted by recency through a small table of day weights; the
//! formulas run in memory; snapshots are written in batches, each
//! in one transaction with the consequences of its rows (tier-change emails, clearance).
//!
//! The nightly run carries yesterday's sums on where it can: each snapshot keeps the running
//! sums behind it ([`Sums`]), and when yesterday's run is complete, the ratings pass and the
//! lagged refunds and complaints read only what changed on D (ratings given, refunds asked
//! for or rejected, complaints made or ruled, orders coming into or leaving a window) and add
//! it to yesterday's, aged by a day; otherwise a full pass. The orders pass is always full.
//!
//! Idempotent and resumable: a row that exists for (shop, D) is never written again and its
//! consequences never repeated, so a second run, or a run resumed after a crash, leaves the
//! same rows and sends nothing twice. The `job_runs` lease on ("dsr.score", D) makes one node
//! compute while the others exit.

use std::collections::{HashMap, HashSet};

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double};

use super::formula::{self as f};
use super::rules::{self, ScoreRules};
use crate::db::schema::{dsr_recommendations as rec, dsr_snapshots as snap, shops, users};
use crate::db::{write_tx, Backend, DbConn};
use crate::error::AppError;
use crate::governance::enforce;
use crate::i18n::{self, Locale};
use crate::jobs::{self, Lease};
use crate::mail::{self, Outgoing};

pub const JOB: &str = "dsr.score";

/// The metrics of the experience score: (name, dimension 0 product / 1 logistics / 2 service,
/// higher is better).
pub const METRICS: [(&str, usize, bool); 7] = [
    ("bad_review_rate", 0, false),
    ("quality_refund_rate", 0, false),
    ("ship_in_time", 1, true),
    ("delivery_hours", 1, false),
    ("complaint_rate", 2, false),
    ("at_fault_rate", 2, false),
    ("refund_hours", 2, false),
];

/// The first instant (naive UTC) of a platform day.
pub fn day_start(tz: chrono_tz::Tz, d: NaiveDate) -> NaiveDateTime {
    tz.from_local_datetime(&d.and_time(NaiveTime::MIN))
        .earliest()
        .map(|t| t.naive_utc())
        .unwrap_or_else(|| d.and_time(NaiveTime::MIN))
}

/// The platform day that contains `now` (naive UTC).
pub fn platform_day(tz: chrono_tz::Tz, now: NaiveDateTime) -> NaiveDate {
    tz.from_utc_datetime(&now).date_naive()
}

/// What one run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    Scored(Summary),
    AlreadyDone,
    RunningElsewhere(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub shops: usize,
    pub written: usize,
    pub scored: usize,
    pub cleared: usize,
    pub emails: usize,
    pub recommended: usize,
    /// The ratings' and the lagged window's sums were carried on from yesterday's (not a full
    /// pass over those windows).
    pub carried: bool,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, out: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            out,
            "{} shops, {} snapshots written, {} with a score, {} cleared, {} emails, {} recommended, {}",
            self.shops,
            self.written,
            self.scored,
            self.cleared,
            self.emails,
            self.recommended,
            if self.carried {
                "ratings, refunds and complaints carried on from yesterday's sums"
            } else {
                "full pass"
            }
        )
    }
}

/// Takes the lease for day D and scores it (or says who did).
pub fn run(
    conn: &mut DbConn,
    settings: &crate::config::Settings,
    day: NaiveDate,
    node: &str,
    now: NaiveDateTime,
) -> Result<RunOutcome, AppError> {
    let period = day.format("%Y-%m-%d").to_string();
    match jobs::acquire(conn, JOB, &period, node)? {
        Lease::Done => Ok(RunOutcome::AlreadyDone),
        Lease::Busy(holder) => Ok(RunOutcome::RunningElsewhere(holder)),
        Lease::Acquired(lease) => {
            let result = score_day(conn, settings, day, now, Some(lease));
            let (ok, detail) = match &result {
                Ok(s) => (true, s.to_string()),
                Err(e) => (false, e.to_string()),
            };
            jobs::finish(conn, lease, ok, &detail)?;
            result.map(RunOutcome::Scored)
        }
    }
}

/// The scheduler's pass: once the platform clock has passed the configured time, scores the
/// day before (the lease makes every later pass, and every other node, a no-op).
pub fn nightly(
    conn: &mut DbConn,
    settings: &crate::config::Settings,
    now: NaiveDateTime,
    node: &str,
) -> Result<String, AppError> {
    let local = settings.tz.from_utc_datetime(&now);
    let minutes = local.hour() * 60 + local.minute();
    if minutes < settings.dsr_at_minutes {
        return Ok("not yet".into());
    }
    let day = local.date_naive() - Duration::days(1);
    Ok(match run(conn, settings, day, node, now)? {
        RunOutcome::Scored(s) => format!("{day}: {s}"),
        RunOutcome::AlreadyDone => format!("{day}: done"),
        RunOutcome::RunningElsewhere(n) => format!("{day}: running on {n}"),
    })
}

// ---------- gathering ----------

/// A double-precision zero (a bare `0.0` is numeric on PostgreSQL).
const ZERO: &str = "CAST(0.0 AS DOUBLE PRECISION)";

/// A timestamp literal for the backend (values made here, never user input).
fn ts(b: Backend, t: NaiveDateTime) -> String {
    let s = t.format("%Y-%m-%d %H:%M:%S");
    match b {
        Backend::Postgres => format!("TIMESTAMP '{s}'"),
        Backend::Sqlite => format!("'{s}'"),
    }
}

/// Hours from `a` to `z` as a SQL expression.
fn hours(b: Backend, a: &str, z: &str) -> String {
    match b {
        // date_part gives double precision; EXTRACT gives numeric (slow arithmetic).
        Backend::Postgres => format!("(date_part('epoch', {z} - {a}) / 3600.0)"),
        Backend::Sqlite => format!("((julianday({z}) - julianday({a})) * 24.0)"),
    }
}

/// The recency weight of each age in days (0 = day D) as a derived table `(d, wt)` to join
/// (a subquery rather than a CTE: PostgreSQL will not run a plan with a CTE scan in parallel).
fn weights(max_age: i64, r: &ScoreRules) -> String {
    let rows: Vec<String> = (0..=max_age)
        .map(|age| format!("({age}, {})", double(f::decay(age, r.half_life_days))))
        .collect();
    format!(
        "(SELECT column1 AS d, column2 AS wt FROM (VALUES {}) v)",
        rows.join(", ")
    )
}

/// A double-precision constant, written so that it reads back as the same number.
fn double(x: f64) -> String {
    format!("CAST({x:?} AS DOUBLE PRECISION)")
}

/// The age in whole days of a timestamp before `end` (the end of day D): 0 on day D.
/// Days are counted as 24 h back from the end of D (exact for zones without daylight saving,
/// such as the default Asia/Shanghai); measured to a millisecond before the end, so the first
/// instant of a day still belongs to it.
fn age(b: Backend, col: &str, end: NaiveDateTime) -> String {
    match b {
        // Shifted so that `end` falls on a midnight, the age is a difference of dates: the
        // same whole days, for a fraction of date_part's cost per row.
        Backend::Postgres => {
            let shift = (86_400 - i64::from(end.time().num_seconds_from_midnight())) % 86_400;
            let last = (end + Duration::seconds(shift)).date() - Duration::days(1);
            format!(
                "(DATE '{last}' - CAST({col} + INTERVAL '{shift} seconds' AS DATE))",
                last = last.format("%Y-%m-%d")
            )
        }
        Backend::Sqlite => {
            let edge = (end - Duration::milliseconds(1)).format("'%Y-%m-%d %H:%M:%S%.3f'");
            format!(
                "CAST({} / 24.0 AS INTEGER)",
                hours(b, col, &edge.to_string())
            )
        }
    }
}

#[derive(QueryableByName)]
struct RatingsRow {
    #[diesel(sql_type = BigInt)]
    shop_id: i64,
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = BigInt)]
    d: i64,
    #[diesel(sql_type = BigInt)]
    s: i64,
    #[diesel(sql_type = BigInt)]
    l: i64,
    #[diesel(sql_type = Double)]
    bad: f64,
    #[diesel(sql_type = BigInt)]
    nb: i64,
}

#[derive(QueryableByName)]
struct OrdersRow {
    #[diesel(sql_type = BigInt)]
    shop_id: i64,
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = BigInt)]
    recent: i64,
    #[diesel(sql_type = Double)]
    ship_den: f64,
    #[diesel(sql_type = Double)]
    ship_num: f64,
    #[diesel(sql_type = Double)]
    lag_den: f64,
    #[diesel(sql_type = Double)]
    den: f64,
    #[diesel(sql_type = Double)]
    time_den: f64,
    #[diesel(sql_type = Double)]
    time_num: f64,
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

#[derive(QueryableByName)]
struct MedianRow {
    #[diesel(sql_type = BigInt)]
    shop_id: i64,
    #[diesel(sql_type = Double)]
    median: f64,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct LaggedRow {
    #[diesel(sql_type = BigInt)]
    shop_id: i64,
    #[diesel(sql_type = Double)]
    quality: f64,
    #[diesel(sql_type = Double)]
    complaint: f64,
    #[diesel(sql_type = Double)]
    fault: f64,
    #[diesel(sql_type = BigInt)]
    nq: i64,
    #[diesel(sql_type = BigInt)]
    nc: i64,
    #[diesel(sql_type = BigInt)]
    nf: i64,
}

fn load<T>(conn: &mut DbConn, sql: &str) -> Result<Vec<T>, AppError>
where
    T: diesel::deserialize::QueryableByName<diesel::pg::Pg>
        + diesel::deserialize::QueryableByName<diesel::sqlite::Sqlite>
        + 'static,
{
    let started = std::time::Instant::now();
    let rows = crate::per_backend!(conn, |c| diesel::sql_query(sql).load::<T>(c))?;
    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        rows = rows.len(),
        sql = &sql[sql.len().saturating_sub(120)..],
        "dsr gather"
    );
    Ok(rows)
}

/// Everything the formulas need about one shop.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub valid_orders: i64,
    pub recent_orders: i64,
    pub ship_num: f64,
    pub ship_den: f64,
    pub delivered: f64,
    pub time_num: f64,
    pub time_den: f64,
    pub lag_den: f64,
    /// (median hours to decide a refund request, requests decided)
    pub refund_hours: Option<(f64, i64)>,
    /// The ratings' and the lagged window's sums (the ones a snapshot keeps).
    pub sums: Sums,
}

/// The running sums behind a snapshot, kept with it (`dsr_snapshots.sums`, JSON) so that the
/// next day's run adds that day's changes instead of reading the whole window again: the
/// counted ratings of the DSR window and their star totals (whole numbers, exact), the
/// recency-weighted bad reviews of the window, and the lagged window's recency-weighted
/// orders with a quality refund, a complaint, a merchant-at-fault ruling; each weighted sum
/// with how many it weighs.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sums {
    pub n: i64,
    pub d: i64,
    pub s: i64,
    pub l: i64,
    pub bad: f64,
    pub nb: i64,
    pub q: f64,
    pub c: f64,
    pub f: f64,
    pub nq: i64,
    pub nc: i64,
    pub nf: i64,
}

impl Sums {
    /// Yesterday's sums as they stand a day later: each recency weight times `aged`.
    fn aged(self, aged: f64) -> Sums {
        Sums {
            bad: self.bad * aged,
            q: self.q * aged,
            c: self.c * aged,
            f: self.f * aged,
            ..self
        }
    }

    /// A weighted sum that weighs nothing is exactly 0, not a rounding residue.
    fn settle(&mut self) {
        for (sum, count) in [
            (&mut self.bad, self.nb),
            (&mut self.q, self.nq),
            (&mut self.c, self.nc),
            (&mut self.f, self.nf),
        ] {
            if count == 0 {
                *sum = 0.0;
            }
        }
    }
}

impl Inputs {
    /// (counted ratings, as described, service, logistics): the DSR means, if any rating counts.
    pub fn dsr(&self) -> Option<(i64, f64, f64, f64)> {
        let Sums { n, d, s, l, .. } = self.sums;
        (n > 0).then(|| {
            let k = n as f64;
            (n, d as f64 / k, s as f64 / k, l as f64 / k)
        })
    }

    /// (value, numerator, denominator) of metric `i` of [`METRICS`]; `None` without data.
    pub fn metric(&self, i: usize) -> Option<(f64, f64, f64)> {
        let rate = |num: f64, den: f64| (den > 0.0).then(|| (num / den, num, den));
        match i {
            0 => rate(self.sums.bad, self.delivered),
            1 => rate(self.sums.q, self.lag_den),
            2 => rate(self.ship_num, self.ship_den),
            3 => rate(self.time_num, self.time_den),
            4 => rate(self.sums.c, self.lag_den),
            5 => rate(self.sums.f, self.lag_den),
            6 => self
                .refund_hours
                .filter(|h| h.1 > 0)
                .map(|(m, n)| (m, m, n as f64)),
            _ => None,
        }
    }
}

/// The shops to score: not cleared, opened before the end of D.
struct ShopRow {
    id: i64,
    category: i64,
    status: String,
    name: String,
    email: String,
    locale: Option<String>,
    created_at: NaiveDateTime,
}

/// Yesterday's running sums, when day D can carry them on: yesterday's run finished, and
/// started after yesterday ended (so its sums hold all of yesterday's ratings), under the
/// rules in force today, and every shop scored today that existed yesterday has its sums (a
/// shop back from clearance, say, would not). Otherwise `None`, and D is a full pass.
fn carried(
    conn: &mut DbConn,
    tz: chrono_tz::Tz,
    day: NaiveDate,
    version: i64,
    shops: &[ShopRow],
    prev: &[(i64, i64, String, i64, Option<String>)],
) -> Result<Option<HashMap<i64, Sums>>, AppError> {
    use crate::db::schema::job_runs as jr;
    let yesterday_end = day_start(tz, day);
    let period = (day - Duration::days(1)).format("%Y-%m-%d").to_string();
    let finished: i64 = jr::table
        .filter(jr::job.eq(JOB))
        .filter(jr::period.eq(&period))
        .filter(jr::status.eq("done"))
        .filter(jr::started_at.ge(yesterday_end))
        .count()
        .get_result(conn)?;
    if finished == 0 {
        return Ok(None);
    }
    let mut carry = HashMap::with_capacity(prev.len());
    for (shop, _, _, rule_version, sums) in prev {
        let parsed = sums
            .as_deref()
            .and_then(|t| serde_json::from_str::<Sums>(t).ok());
        match parsed {
            Some(sums) if *rule_version == version => {
                carry.insert(*shop, sums);
            }
            _ => return Ok(None),
        }
    }
    let complete = shops
        .iter()
        .all(|s| s.created_at >= yesterday_end || carry.contains_key(&s.id));
    Ok(complete.then_some(carry))
}

/// Adds the ratings pass's rows (a shop's sums, or their change on D) to the shops' sums.
fn add_ratings(by_shop: &mut HashMap<i64, Inputs>, rows: Vec<RatingsRow>) {
    for row in rows {
        let s = &mut by_shop.entry(row.shop_id).or_default().sums;
        (s.n, s.d, s.s, s.l) = (s.n + row.n, s.d + row.d, s.s + row.s, s.l + row.l);
        (s.bad, s.nb) = (s.bad + row.bad, s.nb + row.nb);
    }
}

/// Adds the lagged pass's rows (a shop's sums, or their change on D) to the shops' sums.
fn add_lagged(by_shop: &mut HashMap<i64, Inputs>, rows: Vec<LaggedRow>) {
    for row in rows {
        let s = &mut by_shop.entry(row.shop_id).or_default().sums;
        (s.q, s.c, s.f) = (s.q + row.quality, s.c + row.complaint, s.f + row.fault);
        (s.nq, s.nc, s.nf) = (s.nq + row.nq, s.nc + row.nc, s.nf + row.nf);
    }
}

fn gather(
    conn: &mut DbConn,
    tz: chrono_tz::Tz,
    day: NaiveDate,
    r: &ScoreRules,
    carry: Option<&HashMap<i64, Sums>>,
) -> Result<HashMap<i64, Inputs>, AppError> {
    let b = conn.backend();
    let end_t = day_start(tz, day + Duration::days(1));
    let end = ts(b, end_t);
    let since = |days: i64| ts(b, day_start(tz, day - Duration::days(days - 1)));
    let window = r.window_days;
    let (lag_from, lag_to) = (r.lag_from_days, r.lag_to_days);
    let w = weights(lag_to.max(window - 1), r);
    // Carrying on, every shop starts from yesterday's sums a day older; the passes below add
    // the day's changes to them (or, in a full pass, everything, to zero).
    let mut by_shop: HashMap<i64, Inputs> = HashMap::new();
    let aged = f::decay(1, r.half_life_days);
    for (&shop, c) in carry.into_iter().flatten() {
        by_shop.entry(shop).or_default().sums = c.aged(aged);
    }

    // Each row's age in days (and durations) is worked out once in the innermost subquery (on
    // SQLite `LIMIT -1` keeps it from being flattened into the aggregate, which would evaluate
    // those expressions again per use), its day weight found by a join with the small weights
    // table, and everything summed per shop in one pass over the table.
    let once = match b {
        Backend::Sqlite => " LIMIT -1",
        Backend::Postgres => "",
    };
    // Ranges over half the table or more: on SQLite a sequential scan beats the index's random
    // lookups (a unary + keeps the planner off the index).
    let scan = if b == Backend::Sqlite { "+" } else { "" };

    // 1. The ratings: the DSR (counted ratings, i.e. within the monthly cap, of the last 180
    //    days) and the bad reviews ("as described" at or below the bar) of the window,
    //    weighted by their age. Ratings never change and are dated when given, so with
    //    yesterday's sums the day's change is exact: the ratings given on D come in (weight 1),
    //    those of the day that just left each window go out, and yesterday's weighted sum
    //    ages by a day (times 0.5^(1 / half-life)). Without them, one pass over the window.
    let (dsr_start, bad_start) = (since(r.dsr_window_days), since(window));
    if carry.is_some() {
        // The first instant of day D - k (k = a window's length: the day that just left it).
        let gone = |k: i64| since(k + 1);
        let day_of =
            |from: &str, to: &str| format!("x.created_at >= {from} AND x.created_at < {to}");
        let new = day_of(&since(1), &end);
        let (dsr_in, dsr_out) = (gone(r.dsr_window_days), since(r.dsr_window_days));
        let (bad_in, bad_out) = (gone(window), bad_start);
        let counted = |range: &str| format!("{range} AND x.seq <= {}", r.dsr_monthly_cap);
        let cap_new = counted(&new);
        let cap_gone = counted(&day_of(&dsr_in, &dsr_out));
        let bad = |range: &str| format!("{range} AND x.described <= {}", r.bad_review_max_stars);
        // A counted rating's `e` in on D, out on the day that left the DSR window.
        let signed = |e: &str| {
            format!(
                "CAST(SUM(CASE WHEN {cap_new} THEN {e} WHEN {cap_gone} THEN -({e}) ELSE 0 END) AS BIGINT)"
            )
        };
        let sql = format!(
            "SELECT x.shop_id AS shop_id, {n} AS n, {d} AS d, {s} AS s, {l} AS l, \
               CAST(SUM(CASE WHEN {bad_new} THEN {one} WHEN {bad_gone} THEN {w_gone} \
                             ELSE {ZERO} END) AS DOUBLE PRECISION) AS bad, \
               CAST(SUM(CASE WHEN {bad_new} THEN 1 WHEN {bad_gone} THEN -1 ELSE 0 END) AS BIGINT) AS nb \
             FROM ratings x WHERE ({new}) OR ({gone_dsr}) OR ({gone_bad}) GROUP BY x.shop_id",
            n = signed("1"),
            d = signed("x.described"),
            s = signed("x.service"),
            l = signed("x.logistics"),
            bad_new = bad(&new),
            bad_gone = bad(&day_of(&bad_in, &bad_out)),
            one = double(f::decay(0, r.half_life_days)),
            w_gone = double(-f::decay(window, r.half_life_days)),
            gone_dsr = day_of(&dsr_in, &dsr_out),
            gone_bad = day_of(&bad_in, &bad_out),
        );
        add_ratings(&mut by_shop, load::<RatingsRow>(conn, &sql)?);
    } else {
        let first = since(r.dsr_window_days.max(window));
        let counted = format!(
            "x.created_at >= {dsr_start} AND x.seq <= {}",
            r.dsr_monthly_cap
        );
        let stars =
            |col: &str| format!("CAST(SUM(CASE WHEN {counted} THEN x.{col} ELSE 0 END) AS BIGINT)");
        let sql = format!(
            "SELECT x.shop_id AS shop_id, \
               CAST(SUM(CASE WHEN {counted} THEN 1 ELSE 0 END) AS BIGINT) AS n, \
               {d} AS d, {s} AS s, {l} AS l, \
               CAST(SUM(CASE WHEN w.wt IS NULL THEN {ZERO} ELSE w.wt END) AS DOUBLE PRECISION) AS bad, \
               CAST(SUM(CASE WHEN w.wt IS NULL THEN 0 ELSE 1 END) AS BIGINT) AS nb \
             FROM (SELECT shop_id, created_at, seq, described, service, logistics, \
                     CASE WHEN created_at >= {bad_start} AND described <= {max} THEN {age} END AS bd \
                   FROM ratings WHERE {scan}created_at >= {first} AND {scan}created_at < {end}{once}) x \
             LEFT JOIN {w} w ON w.d = x.bd GROUP BY x.shop_id",
            age = age(b, "created_at", end_t),
            max = r.bad_review_max_stars,
            d = stars("described"),
            s = stars("service"),
            l = stars("logistics"),
        );
        add_ratings(&mut by_shop, load::<RatingsRow>(conn, &sql)?);
    }

    // 2. One pass over the orders, for two sets of them:
    //    - valid orders paid within the last `lag_to` days (age `pd`): the window's count,
    //      recent activity, shipping in time (orders paid long enough ago to have had the whole
    //      shipping allowance) and the lagged window's denominator;
    //    - orders delivered in the window (age `dd`; by the delivery scan, or completion
    //      without one) and the delivery times of the scanned ones.
    //    The ages are read back from the weights joined on them (`wp.d` is `pd`, `wd.d` is
    //    `dd`: every age in range has a weight row): PostgreSQL flattens the subquery and would
    //    otherwise work out the CASE behind `pd` again for every aggregate that mentions it.
    //    For the same reason the shipping credit compares timestamps there instead of an
    //    hours column, and its constants are doubles (a numeric CASE is converted per row).
    let longest = r.ship_credit.last().map(|c| c.0).unwrap_or(48);
    let mut credit = format!("CASE WHEN o.shipped_at IS NULL OR o.shipped_at >= {end} THEN {ZERO}");
    for (bound, c) in &r.ship_credit {
        let within = match b {
            Backend::Postgres => format!("o.shipped_at <= o.paid_at + INTERVAL '{bound} hours'"),
            Backend::Sqlite => format!("o.sh <= {bound}"),
        };
        credit.push_str(&format!(
            " WHEN {within} THEN CAST({c:.6} AS DOUBLE PRECISION)"
        ));
    }
    credit.push_str(&format!(" ELSE {ZERO} END"));
    let shippable = format!(
        "o.paid_at < {cut} AND (o.shipped_at IS NOT NULL OR o.status NOT IN ('cancelled', 'closed'))",
        cut = ts(b, end_t - Duration::hours(longest))
    );
    let delivered = "COALESCE(delivered_at, completed_at)";
    let scanned = "o.delivered_at IS NOT NULL AND o.shipped_at IS NOT NULL";
    let paid_start = since(lag_to.max(window - 1) + 1);
    let paid_in = format!(
        "paid_at >= {paid_start} AND paid_at < {end} AND total_fen >= {min}",
        min = r.valid_order_min_fen,
    );
    let delivered_in = format!(
        "{delivered} >= {start} AND {delivered} < {end}",
        start = since(window)
    );
    let in_window = format!("wp.d < {window}");
    let sql = format!(
        "SELECT o.shop_id AS shop_id, \
           CAST(SUM(CASE WHEN {in_window} THEN 1 ELSE 0 END) AS BIGINT) AS n, \
           CAST(SUM(CASE WHEN wp.d IS NOT NULL AND o.paid_at >= {recent} THEN 1 ELSE 0 END) AS BIGINT) AS recent, \
           CAST(SUM(CASE WHEN {in_window} AND {shippable} THEN wp.wt ELSE {ZERO} END) AS DOUBLE PRECISION) AS ship_den, \
           CAST(SUM(CASE WHEN {in_window} AND {shippable} THEN ({credit}) * wp.wt ELSE {ZERO} END) AS DOUBLE PRECISION) AS ship_num, \
           CAST(SUM(CASE WHEN wp.d >= {lag_from} AND wp.d <= {lag_to} THEN wp.wt ELSE {ZERO} END) AS DOUBLE PRECISION) AS lag_den, \
           CAST(SUM(CASE WHEN wd.wt IS NULL THEN {ZERO} ELSE wd.wt END) AS DOUBLE PRECISION) AS den, \
           CAST(SUM(CASE WHEN wd.d IS NOT NULL AND {scanned} THEN wd.wt ELSE {ZERO} END) AS DOUBLE PRECISION) AS time_den, \
           CAST(SUM(CASE WHEN wd.d IS NOT NULL AND {scanned} THEN o.h * wd.wt ELSE {ZERO} END) AS DOUBLE PRECISION) AS time_num \
         FROM (SELECT shop_id, paid_at, shipped_at, delivered_at, status, \
                 CASE WHEN {paid_in} THEN {page} END AS pd, \
                 CASE WHEN {delivered_in} THEN {dage} END AS dd, \
                 {sh} AS sh, {h} AS h \
               FROM orders WHERE ({scan}paid_at >= {paid_start} AND {scan}paid_at < {end}) OR ({delivered_in}){once}) o \
         LEFT JOIN {w} wp ON wp.d = o.pd LEFT JOIN {w} wd ON wd.d = o.dd \
         WHERE wp.d IS NOT NULL OR wd.d IS NOT NULL GROUP BY o.shop_id",
        page = age(b, "paid_at", end_t),
        dage = age(b, delivered, end_t),
        sh = hours(b, "paid_at", "shipped_at"),
        h = hours(b, "shipped_at", "delivered_at"),
        recent = since(r.recommend_recent_days),
    );
    for row in load::<OrdersRow>(conn, &sql)? {
        let e = by_shop.entry(row.shop_id).or_default();
        e.valid_orders = row.n;
        e.recent_orders = row.recent;
        e.ship_den = row.ship_den;
        e.ship_num = row.ship_num;
        e.lag_den = row.lag_den;
        e.delivered = row.den;
        e.time_den = row.time_den;
        e.time_num = row.time_num;
    }

    // 3. The lagged window's numerators, from the (few) refunds and complaints: orders paid
    //    T-15 … T-104 with a quality refund, a complaint, a merchant-at-fault ruling, as known
    //    at the end of D (a refund rejected after D still counts on D; a ruling counts from
    //    the instant it was made). The events as one list of (order, kind, and per instant
    //    whether it counts and whether at fault), joined with their orders once (CROSS JOIN
    //    keeps SQLite from driving the join from the many orders instead): per order whether
    //    it had any of each kind.
    let events = |ends: &[(&str, &str)], only: &str| {
        let mut refund = String::new();
        let mut complaint = String::new();
        for (tag, at) in ends {
            refund.push_str(&format!(
                ", CASE WHEN requested_at < {at} AND NOT (status = 'rejected' AND decided_at < {at}) \
                   THEN 1 ELSE 0 END AS n{tag}, 0 AS f{tag}"
            ));
            complaint.push_str(&format!(
                ", CASE WHEN created_at < {at} THEN 1 ELSE 0 END, \
                   CASE WHEN created_at < {at} AND merchant_at_fault = TRUE AND ruled_at < {at} \
                   THEN 1 ELSE 0 END"
            ));
        }
        format!(
            "SELECT order_id, 0 AS kind{refund} FROM refunds \
               WHERE reason_category = 'quality' AND requested_at < {end}{only} \
             UNION ALL \
             SELECT order_id, 1{complaint} FROM complaints \
               WHERE order_id IS NOT NULL AND created_at < {end}{only}"
        )
    };
    // Per order: whether any event of a kind counts at the instant tagged `t`.
    let any = |t: &str| {
        format!(
            "MAX(CASE WHEN e.kind = 0 THEN e.n{t} ELSE 0 END) AS q{t}, \
             MAX(CASE WHEN e.kind = 1 THEN e.n{t} ELSE 0 END) AS c{t}, \
             MAX(CASE WHEN e.kind = 1 THEN e.f{t} ELSE 0 END) AS f{t}"
        )
    };
    let oage = age(b, "o.paid_at", end_t);
    let valid = format!(
        "o.paid_at IS NOT NULL AND o.total_fen >= {}",
        r.valid_order_min_fen
    );
    if carry.is_some() {
        // With yesterday's sums: only the orders whose standing changed on D (a quality
        // refund asked for or rejected, a complaint made or ruled on D; paid on the day that
        // just came into the lagged window or just left it), each as (counted at the end of
        // D, in the window now) minus (counted at the end of D - 1, in it then), weighted at
        // today's age; yesterday's sums age by a day.
        let from = since(1);
        let on_d = |col: &str| format!("{col} >= {from} AND {col} < {end}");
        let (came, left) = (
            (since(lag_from + 1), since(lag_from)),
            (since(lag_to + 2), since(lag_to + 1)),
        );
        let boundary = format!(
            "SELECT id FROM orders WHERE (paid_at >= {} AND paid_at < {}) \
               OR (paid_at >= {} AND paid_at < {})",
            came.0, came.1, left.0, left.1,
        );
        // First the orders (a few per shop at most), then their events: named in the query,
        // the planner looks each order up instead of scanning for a guessed many.
        let sql = format!(
            "SELECT order_id AS id FROM refunds WHERE reason_category = 'quality' \
               AND (({req}) OR (status = 'rejected' AND {dec})) \
             UNION SELECT order_id FROM complaints WHERE order_id IS NOT NULL \
               AND (({made}) OR (merchant_at_fault = TRUE AND {ruled})) \
             UNION SELECT order_id FROM refunds WHERE reason_category = 'quality' \
               AND order_id IN ({boundary}) \
             UNION SELECT order_id FROM complaints WHERE order_id IN ({boundary})",
            req = on_d("requested_at"),
            dec = on_d("decided_at"),
            made = on_d("created_at"),
            ruled = on_d("ruled_at"),
        );
        let ids: Vec<String> = load::<IdRow>(conn, &sql)?
            .into_iter()
            .map(|r| r.id.to_string())
            .collect();
        let only = format!(" AND order_id IN ({})", ids.join(", "));
        let within = |shift: i64| {
            format!(
                "CASE WHEN {oage} >= {} AND {oage} <= {} THEN 1 ELSE 0 END",
                lag_from + shift,
                lag_to + shift
            )
        };
        let diff = |k: &str| format!("p.i1 * p.{k}1 - p.i0 * p.{k}0");
        let sql = format!(
            "SELECT p.shop_id AS shop_id, \
               CAST(SUM(({q}) * w.wt) AS DOUBLE PRECISION) AS quality, \
               CAST(SUM(({c}) * w.wt) AS DOUBLE PRECISION) AS complaint, \
               CAST(SUM(({f}) * w.wt) AS DOUBLE PRECISION) AS fault, \
               CAST(SUM({q}) AS BIGINT) AS nq, CAST(SUM({c}) AS BIGINT) AS nc, \
               CAST(SUM({f}) AS BIGINT) AS nf \
             FROM (SELECT o.shop_id AS shop_id, {oage} AS d, {i1} AS i1, {i0} AS i0, {a1}, {a0} \
                   FROM ({ev}) e CROSS JOIN orders o \
                   WHERE o.id = e.order_id AND {valid} \
                   GROUP BY o.id, o.shop_id, o.paid_at) p \
             JOIN {w} w ON w.d = p.d GROUP BY p.shop_id",
            q = diff("q"),
            c = diff("c"),
            f = diff("f"),
            i1 = within(0),
            i0 = within(1),
            a1 = any("1"),
            a0 = any("0"),
            ev = events(&[("1", &end), ("0", &from)], &only),
            w = weights(lag_to + 1, r),
        );
        if !ids.is_empty() {
            add_lagged(&mut by_shop, load::<LaggedRow>(conn, &sql)?);
        }
    } else {
        let lagged = format!(
            "o.paid_at >= {start} AND o.paid_at < {stop}",
            start = since(lag_to + 1),
            stop = since(lag_from),
        );
        let sql = format!(
            "SELECT g.shop_id AS shop_id, \
               CAST(SUM(g.q1 * w.wt) AS DOUBLE PRECISION) AS quality, \
               CAST(SUM(g.c1 * w.wt) AS DOUBLE PRECISION) AS complaint, \
               CAST(SUM(g.f1 * w.wt) AS DOUBLE PRECISION) AS fault, \
               CAST(SUM(g.q1) AS BIGINT) AS nq, CAST(SUM(g.c1) AS BIGINT) AS nc, \
               CAST(SUM(g.f1) AS BIGINT) AS nf \
             FROM (SELECT o.shop_id AS shop_id, {oage} AS d, {a1} \
                   FROM ({ev}) e CROSS JOIN orders o \
                   WHERE o.id = e.order_id AND {valid} AND {lagged} \
                   GROUP BY o.id, o.shop_id, o.paid_at) g \
             JOIN {w} w ON w.d = g.d GROUP BY g.shop_id",
            a1 = any("1"),
            ev = events(&[("1", &end)], ""),
        );
        add_lagged(&mut by_shop, load::<LaggedRow>(conn, &sql)?);
    }

    // 4. How long the shop took to decide the refund requests of the window: the median per
    //    shop (the middle value, or the mean of the middle two) and how many, worked out in
    //    the database, so only two numbers per shop come back.
    let sql = format!(
        "SELECT m.shop_id AS shop_id, CAST(AVG(m.h) AS DOUBLE PRECISION) AS median, \
           CAST(MAX(m.c) AS BIGINT) AS n \
         FROM (SELECT f.shop_id AS shop_id, f.h AS h, \
                 ROW_NUMBER() OVER (PARTITION BY f.shop_id ORDER BY f.h) AS k, \
                 COUNT(*) OVER (PARTITION BY f.shop_id) AS c \
               FROM (SELECT shop_id, CASE WHEN {h} < 0 THEN 0.0 ELSE {h} END AS h FROM refunds \
                     WHERE requested_at >= {start} AND requested_at < {end} \
                       AND decided_at IS NOT NULL AND decided_at < {end}) f) m \
         WHERE m.k = (m.c + 1) / 2 OR m.k = (m.c + 2) / 2 GROUP BY m.shop_id",
        h = hours(b, "requested_at", "decided_at"),
        start = since(window),
    );
    for row in load::<MedianRow>(conn, &sql)? {
        by_shop.entry(row.shop_id).or_default().refund_hours = Some((row.median, row.n));
    }
    for e in by_shop.values_mut() {
        e.sums.settle();
    }
    Ok(by_shop)
}

// ---------- scoring ----------

/// One shop's computed snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub shop_id: i64,
    pub category_id: i64,
    pub rating_count: i64,
    pub dsr: [Option<f64>; 3],
    pub dsr_vs: [Option<f64>; 3],
    pub valid_orders: i64,
    pub raw_score: Option<f64>,
    pub score: Option<f64>,
    pub dims: [Option<f64>; 3],
    /// Every metric's value, numerator, denominator, rank and points, and the smoothing, as
    /// the JSON text the snapshot keeps (text, not a `serde_json::Value`: a few hundred bytes
    /// per shop instead of some fifty allocations).
    pub metrics: String,
    pub tier: &'static str,
    pub low_days: i64,
    pub recent_orders: i64,
    /// The running sums behind it, as the JSON the snapshot keeps.
    pub sums: String,
}

/// (value, numerator, denominator, percent rank, points) of one metric of one shop.
type MetricPoints = (f64, f64, f64, f64, f64);

/// Applies the formulas to every shop at once: peer comparisons and percent ranks are per
/// main category. `shops` is (shop id, category); `previous` is yesterday's low-day counts.
pub fn compute(
    shops: &[(i64, i64)],
    inputs: &HashMap<i64, Inputs>,
    previous: &HashMap<i64, i64>,
    r: &ScoreRules,
) -> Vec<Scored> {
    let empty = Inputs::default();
    let input = |id: i64| inputs.get(&id).unwrap_or(&empty);
    // The metrics in the order of their names, as the snapshot's JSON lists them.
    let mut by_name: Vec<usize> = (0..METRICS.len()).collect();
    by_name.sort_by_key(|&i| METRICS[i].0);
    let mut by_cat: HashMap<i64, Vec<i64>> = HashMap::new();
    for &(id, cat) in shops {
        by_cat.entry(cat).or_default().push(id);
    }
    let mut out: HashMap<i64, Scored> = HashMap::new();
    for (&cat, ids) in &by_cat {
        // DSR peers: each shop with a counted rating, once.
        let peers: [Option<f::Peers>; 3] = [0, 1, 2].map(|k| {
            let values: Vec<f64> = ids
                .iter()
                .filter_map(|&id| input(id).dsr().map(|d| [d.1, d.2, d.3][k]))
                .collect();
            f::Peers::of(&values)
        });
        // Each shop's metrics for the snapshot (JSON members), until its smoothing is known.
        let mut explained: HashMap<i64, String> = HashMap::new();
        // Percent rank of every metric among the category's shops that have it.
        let mut metric_points: HashMap<(i64, usize), MetricPoints> = HashMap::new();
        for (i, &(_, _, higher)) in METRICS.iter().enumerate() {
            let present: Vec<(i64, (f64, f64, f64))> = ids
                .iter()
                .filter(|&&id| input(id).valid_orders > 0)
                .filter_map(|&id| input(id).metric(i).map(|m| (id, m)))
                .collect();
            let values: Vec<f64> = present.iter().map(|(_, m)| m.0).collect();
            for ((id, (v, num, den)), rank) in present.iter().zip(f::percent_ranks(&values, higher))
            {
                metric_points.insert((*id, i), (*v, *num, *den, rank, f::points(rank, r)));
            }
        }
        for &id in ids {
            let inp = input(id);
            let mut dims_sum = [0.0f64; 3];
            let mut dims_n = [0usize; 3];
            for (i, &(_, dim, _)) in METRICS.iter().enumerate() {
                if let Some(p) = metric_points.get(&(id, i)) {
                    dims_sum[dim] += p.4;
                    dims_n[dim] += 1;
                }
            }
            let metrics = explained.entry(id).or_default();
            for &i in &by_name {
                if let Some(&(v, num, den, rank, pts)) = metric_points.get(&(id, i)) {
                    metrics.push_str(&format!(",\"{}\":{{\"value\":", METRICS[i].0));
                    json_number(metrics, Some(v));
                    for (key, x) in [("num", num), ("den", den), ("rank", rank), ("points", pts)] {
                        metrics.push_str(&format!(",\"{key}\":"));
                        json_number(metrics, Some(x));
                    }
                    metrics.push('}');
                }
            }
            let dims = [0, 1, 2].map(|d| (dims_n[d] > 0).then(|| dims_sum[d] / dims_n[d] as f64));
            let raw = (inp.valid_orders > 0).then(|| f::weighted_score(dims, r));
            let means = inp.dsr();
            let dsr = [0, 1, 2].map(|k| means.map(|d| [d.1, d.2, d.3][k]));
            let dsr_vs = [0, 1, 2].map(|k| dsr[k].and_then(|v| peers[k]?.vs(v)));
            out.insert(
                id,
                Scored {
                    shop_id: id,
                    category_id: cat,
                    rating_count: inp.sums.n,
                    dsr,
                    dsr_vs,
                    valid_orders: inp.valid_orders,
                    raw_score: raw,
                    score: None,
                    dims,
                    metrics: String::new(),
                    tier: "unrated",
                    low_days: 0,
                    recent_orders: inp.recent_orders,
                    sums: serde_json::to_string(&inp.sums).unwrap_or_default(),
                },
            );
        }
        // Smoothing toward the category mean of the raw scores, then the thresholds.
        let raws: Vec<f64> = ids
            .iter()
            .filter_map(|id| out.get(id).and_then(|s| s.raw_score))
            .collect();
        let mean = (!raws.is_empty()).then(|| raws.iter().sum::<f64>() / raws.len() as f64);
        for id in ids {
            if let Some(s) = out.get_mut(id) {
                if let (Some(x), Some(c)) = (s.raw_score, mean) {
                    if s.valid_orders >= r.min_valid_orders {
                        s.score = Some(f::round2(f::smooth(
                            s.valid_orders as f64,
                            x,
                            r.smoothing_m,
                            c,
                        )));
                    }
                }
                s.tier = f::tier(s.score, r);
                s.low_days = f::low_days(previous.get(id).copied().unwrap_or(0), s.score, r);
                let mut m = format!("{{\"_smoothing\":{{\"n\":{},\"m\":", s.valid_orders);
                json_number(&mut m, Some(r.smoothing_m));
                m.push_str(",\"category_mean\":");
                json_number(&mut m, mean);
                m.push('}');
                m.push_str(&explained.remove(id).unwrap_or_default());
                m.push('}');
                s.metrics = m;
            }
        }
    }
    let mut v: Vec<Scored> = out.into_values().collect();
    v.sort_by_key(|s| s.shop_id);
    v
}

/// Writes a number as JSON (as serde_json would; `null` for none or a non-finite value).
fn json_number(out: &mut String, x: Option<f64>) {
    use std::fmt::Write;
    match x.and_then(serde_json::Number::from_f64) {
        Some(n) => {
            let _ = write!(out, "{n}");
        }
        None => out.push_str("null"),
    }
}

/// The recommended shops: per category the best `recommend_per_category` by score among
/// active shops with recent sales and a tier that is not restricted.
pub fn recommend(scored: &[Scored], active: &HashSet<i64>, r: &ScoreRules) -> Vec<(i64, i64, f64)> {
    let mut by_cat: HashMap<i64, Vec<(i64, f64)>> = HashMap::new();
    for s in scored {
        if let Some(score) = s.score {
            if s.recent_orders > 0
                && matches!(s.tier, "boost" | "normal")
                && active.contains(&s.shop_id)
            {
                by_cat
                    .entry(s.category_id)
                    .or_default()
                    .push((s.shop_id, score));
            }
        }
    }
    let mut out = Vec::new();
    let mut cats: Vec<_> = by_cat.into_iter().collect();
    cats.sort_by_key(|c| c.0);
    for (cat, mut list) in cats {
        list.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        for (shop, score) in list
            .into_iter()
            .take(r.recommend_per_category.max(0) as usize)
        {
            out.push((cat, shop, score));
        }
    }
    out
}

// ---------- writing ----------

#[derive(Insertable)]
#[diesel(table_name = snap, treat_none_as_default_value = false)]
struct NewSnapshot {
    shop_id: i64,
    day: String,
    rule_version: i64,
    category_id: i64,
    rating_count: i64,
    described: Option<f64>,
    service: Option<f64>,
    logistics: Option<f64>,
    described_vs: Option<f64>,
    service_vs: Option<f64>,
    logistics_vs: Option<f64>,
    valid_orders: i64,
    raw_score: Option<f64>,
    score: Option<f64>,
    product_points: Option<f64>,
    logistics_points: Option<f64>,
    service_points: Option<f64>,
    metrics: String,
    tier: String,
    low_days: i64,
    created_at: NaiveDateTime,
    sums: Option<String>,
}

/// PostgreSQL: a batch of snapshots as one `INSERT … SELECT FROM unnest(…)` with a column
/// array per parameter (22 parameters for the batch, not 22 per row: parsing and binding the
/// row-by-row `VALUES` of a 500-row batch took a third as long as inserting it).
fn insert_unnested(pg: &mut diesel::PgConnection, rows: &[NewSnapshot]) -> QueryResult<usize> {
    use diesel::sql_types::{Array, Nullable, Text, Timestamp};
    let first = &rows[0];
    let col = |f: fn(&NewSnapshot) -> Option<f64>| rows.iter().map(f).collect::<Vec<_>>();
    let int = |f: fn(&NewSnapshot) -> i64| rows.iter().map(f).collect::<Vec<_>>();
    diesel::sql_query(
        "INSERT INTO dsr_snapshots (day, rule_version, created_at, shop_id, category_id, \
           rating_count, valid_orders, low_days, described, service, logistics, described_vs, \
           service_vs, logistics_vs, raw_score, score, product_points, logistics_points, \
           service_points, metrics, tier, sums) \
         SELECT $1, $2, $3, u.* FROM unnest($4::BIGINT[], $5::BIGINT[], $6::BIGINT[], \
           $7::BIGINT[], $8::BIGINT[], $9::FLOAT8[], $10::FLOAT8[], $11::FLOAT8[], $12::FLOAT8[], \
           $13::FLOAT8[], $14::FLOAT8[], $15::FLOAT8[], $16::FLOAT8[], $17::FLOAT8[], \
           $18::FLOAT8[], $19::FLOAT8[], $20::TEXT[], $21::TEXT[], $22::TEXT[]) AS u \
         ON CONFLICT DO NOTHING",
    )
    .bind::<Text, _>(&first.day)
    .bind::<BigInt, _>(first.rule_version)
    .bind::<Timestamp, _>(first.created_at)
    .bind::<Array<BigInt>, _>(int(|r| r.shop_id))
    .bind::<Array<BigInt>, _>(int(|r| r.category_id))
    .bind::<Array<BigInt>, _>(int(|r| r.rating_count))
    .bind::<Array<BigInt>, _>(int(|r| r.valid_orders))
    .bind::<Array<BigInt>, _>(int(|r| r.low_days))
    .bind::<Array<Nullable<Double>>, _>(col(|r| r.described))
    .bind::<Array<Nullable<Double>>, _>(col(|r| r.service))
    .bind::<Array<Nullable<Double>>, _>(col(|r| r.logistics))
    .bind::<Array<Nullable<Double>>, _>(col(|r| r.described_vs))
    .bind::<Array<Nullable<Double>>, _>(col(|r| r.service_vs))
    .bind::<Array<Nullable<Double>>, _>(col(|r| r.logistics_vs))
    .bind::<Array<Nullable<Double>>, _>(col(|r| r.raw_score))
    .bind::<Array<Nullable<Double>>, _>(col(|r| r.score))
    .bind::<Array<Nullable<Double>>, _>(col(|r| r.product_points))
    .bind::<Array<Nullable<Double>>, _>(col(|r| r.logistics_points))
    .bind::<Array<Nullable<Double>>, _>(col(|r| r.service_points))
    .bind::<Array<Text>, _>(rows.iter().map(|r| r.metrics.as_str()).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(rows.iter().map(|r| r.tier.as_str()).collect::<Vec<_>>())
    .bind::<Array<Nullable<Text>>, _>(rows.iter().map(|r| r.sums.as_deref()).collect::<Vec<_>>())
    .execute(pg)
}

/// Test hook: the process exits right after committing this many batches (to prove resume).
fn crash_after() -> Option<usize> {
    std::env::var("HAODIAN_FAULT_DSR_EXIT_AFTER_BATCHES")
        .ok()
        .and_then(|v| v.parse().ok())
}

/// Scores day D for every shop (the lease, if any, is heart-beaten between batches).
pub fn score_day(
    conn: &mut DbConn,
    settings: &crate::config::Settings,
    day: NaiveDate,
    now: NaiveDateTime,
    lease: Option<i64>,
) -> Result<Summary, AppError> {
    let tz = settings.tz;
    let (version, r) = rules::current(conn)?;
    let end = day_start(tz, day + Duration::days(1));
    #[allow(clippy::type_complexity)]
    let shop_rows: Vec<(
        i64,
        i64,
        String,
        String,
        String,
        Option<String>,
        NaiveDateTime,
    )> = shops::table
        .inner_join(users::table)
        .filter(shops::status.ne("cleared"))
        .filter(shops::created_at.lt(end))
        .order(shops::id)
        .select((
            shops::id,
            shops::main_category_id,
            shops::status,
            shops::name,
            users::email,
            users::locale,
            shops::created_at,
        ))
        .load(conn)?;
    let shop_list: Vec<ShopRow> = shop_rows
        .into_iter()
        .map(
            |(id, category, status, name, email, locale, created_at)| ShopRow {
                id,
                category,
                status,
                name,
                email,
                locale,
                created_at,
            },
        )
        .collect();
    let day_s = day.format("%Y-%m-%d").to_string();
    let prev_s = (day - Duration::days(1)).format("%Y-%m-%d").to_string();
    let prev: Vec<(i64, i64, String, i64, Option<String>)> = snap::table
        .filter(snap::day.eq(&prev_s))
        .select((
            snap::shop_id,
            snap::low_days,
            snap::tier,
            snap::rule_version,
            snap::sums,
        ))
        .load(conn)?;
    let carry = carried(conn, tz, day, version, &shop_list, &prev)?;
    let started = std::time::Instant::now();
    // On SQLite the aggregates' sorts spill to temporary files while gathering instead of
    // growing in memory with the number of rows (the pool's connections keep temp_store =
    // MEMORY for the pages' small sorts).
    let inputs = match conn.backend() {
        Backend::Sqlite => crate::db::with_setting(
            conn,
            "PRAGMA temp_store = FILE",
            "PRAGMA temp_store = MEMORY",
            |c| gather(c, tz, day, &r, carry.as_ref()),
        )?,
        Backend::Postgres => gather(conn, tz, day, &r, carry.as_ref())?,
    };
    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        carried = carry.is_some(),
        "dsr gathered"
    );
    let prev_low: HashMap<i64, i64> = prev.iter().map(|p| (p.0, p.1)).collect();
    let prev_tier: HashMap<i64, String> = prev.into_iter().map(|p| (p.0, p.2)).collect();
    let pairs: Vec<(i64, i64)> = shop_list.iter().map(|s| (s.id, s.category)).collect();
    let scored = compute(&pairs, &inputs, &prev_low, &r);
    tracing::debug!(ms = started.elapsed().as_millis() as u64, "dsr computed");
    let info: HashMap<i64, &ShopRow> = shop_list.iter().map(|s| (s.id, s)).collect();

    let mut summary = Summary {
        shops: scored.len(),
        scored: scored.iter().filter(|s| s.score.is_some()).count(),
        carried: carry.is_some(),
        ..Summary::default()
    };
    let fault = crash_after();
    // The shops a run before this one (killed midway, or finished) already wrote: read once,
    // since only the lease holder writes day D (the unique key backs that up).
    let existing: HashSet<i64> = snap::table
        .filter(snap::day.eq(&day_s))
        .select(snap::shop_id)
        .load::<i64>(conn)?
        .into_iter()
        .collect();
    for (batch_no, batch) in scored.chunks(settings.dsr_batch).enumerate() {
        let (written, cleared, emails) = write_tx(conn, |c| {
            let fresh: Vec<&Scored> = batch
                .iter()
                .filter(|s| !existing.contains(&s.shop_id))
                .collect();
            let mut cleared = 0;
            let mut emails = 0;
            let mut rows = Vec::with_capacity(fresh.len());
            let mut mails = Vec::new();
            for s in &fresh {
                let shop = info.get(&s.shop_id);
                let mut tier = s.tier;
                if f::clears(s.low_days, &r) {
                    let reason = i18n::tf(
                        Locale::ZhCn,
                        "dsr.clear_reason",
                        &[
                            ("days", &s.low_days.to_string()),
                            ("min", &format!("{:.1}", r.tier_clearance)),
                        ],
                    );
                    if enforce::clear_shop(c, s.shop_id, None, "dsr.clear", &reason, now)? {
                        cleared += 1;
                        emails += 1;
                        tier = "cleared";
                    }
                } else if let Some(shop) = shop {
                    let before = prev_tier.get(&s.shop_id).map(String::as_str);
                    let changed = match before {
                        Some(b) => b != tier,
                        None => !matches!(tier, "unrated" | "normal"),
                    };
                    if changed && shop.status != "cleared" {
                        mails.push(tier_mail(shop, before.unwrap_or("unrated"), tier, s.score));
                        emails += 1;
                    }
                }
                rows.push(NewSnapshot {
                    shop_id: s.shop_id,
                    day: day_s.clone(),
                    rule_version: version,
                    category_id: s.category_id,
                    rating_count: s.rating_count,
                    described: s.dsr[0],
                    service: s.dsr[1],
                    logistics: s.dsr[2],
                    described_vs: s.dsr_vs[0],
                    service_vs: s.dsr_vs[1],
                    logistics_vs: s.dsr_vs[2],
                    valid_orders: s.valid_orders,
                    raw_score: s.raw_score,
                    score: s.score,
                    product_points: s.dims[0],
                    logistics_points: s.dims[1],
                    service_points: s.dims[2],
                    metrics: s.metrics.clone(),
                    tier: tier.to_string(),
                    low_days: s.low_days,
                    created_at: now,
                    sums: Some(s.sums.clone()),
                });
            }
            mail::enqueue_many(c, &mails)?;
            if !rows.is_empty() {
                match c {
                    DbConn::Postgres(pg) => insert_unnested(pg, &rows)?,
                    DbConn::Sqlite(lite) => diesel::insert_into(snap::table)
                        .values(&rows)
                        .on_conflict_do_nothing()
                        .execute(lite)?,
                };
            }
            Ok::<_, AppError>((rows.len(), cleared, emails))
        })?;
        summary.written += written;
        summary.cleared += cleared;
        summary.emails += emails;
        if let Some(id) = lease {
            jobs::heartbeat(conn, id)?;
        }
        if fault == Some(batch_no + 1) {
            eprintln!("fault injection: exiting after batch {}", batch_no + 1);
            std::process::exit(3);
        }
    }

    let active: HashSet<i64> = shop_list
        .iter()
        .filter(|s| s.status == "active")
        .map(|s| s.id)
        .collect();
    tracing::debug!(ms = started.elapsed().as_millis() as u64, "dsr written");
    let picks = recommend(&scored, &active, &r);
    summary.recommended = picks.len();
    write_tx(conn, |c| {
        for (rank, &(cat, shop, score)) in picks.iter().enumerate() {
            let rank_in_cat = picks[..rank].iter().filter(|p| p.0 == cat).count() as i64 + 1;
            crate::per_backend!(c, |c| diesel::insert_into(rec::table)
                .values((
                    rec::day.eq(&day_s),
                    rec::category_id.eq(cat),
                    rec::rank.eq(rank_in_cat),
                    rec::shop_id.eq(shop),
                    rec::score.eq(score),
                ))
                .on_conflict_do_nothing()
                .execute(c))?;
        }
        Ok::<_, AppError>(())
    })?;
    Ok(summary)
}

/// The email telling a shop its tier changed (queued with the batch's snapshots).
fn tier_mail<'a>(shop: &'a ShopRow, before: &str, after: &str, score: Option<f64>) -> Outgoing<'a> {
    let l = shop
        .locale
        .as_deref()
        .and_then(Locale::parse)
        .unwrap_or_default();
    let name = |t: &str| i18n::t(l, &format!("dsr.tier.{t}")).into_owned();
    let score = score
        .map(|s| format!("{s:.2}"))
        .unwrap_or_else(|| "—".into());
    Outgoing {
        to: &shop.email,
        kind: "dsr_tier",
        subject: i18n::tf(
            l,
            "mail.dsr_tier.subject",
            &[("shop", &shop.name), ("tier", &name(after))],
        ),
        body: i18n::tf(
            l,
            "mail.dsr_tier.body",
            &[
                ("shop", &shop.name),
                ("before", &name(before)),
                ("after", &name(after)),
                ("score", &score),
                (
                    "consequence",
                    &i18n::t(l, &format!("dsr.consequence.{after}")),
                ),
            ],
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(valid: i64, bad: f64, delivered: f64) -> Inputs {
        Inputs {
            valid_orders: valid,
            recent_orders: valid,
            delivered,
            sums: Sums {
                bad,
                nb: 1,
                ..Sums::default()
            },
            ..Inputs::default()
        }
    }

    #[test]
    fn compute_ranks_within_category_and_smooths() {
        let r = ScoreRules::default_set();
        // Category 1: shop 1 has no bad reviews, shop 2 has 10%; shop 3 alone in category 2.
        let shops = [(1, 1), (2, 1), (3, 2), (4, 1)];
        let mut inp = HashMap::new();
        inp.insert(1, inputs(30, 0.0, 10.0));
        inp.insert(2, inputs(30, 1.0, 10.0));
        inp.insert(3, inputs(100, 1.0, 10.0));
        // Shop 4 has no orders: no score, no rank.
        let out = compute(&shops, &inp, &HashMap::new(), &r);
        let by = |id: i64| out.iter().find(|s| s.shop_id == id).unwrap();
        // Product dimension: shop 1 ranks best (5.0), shop 2 worst (3.0); other dims absent
        // count as 4.0. Raw = 0.5·p + 0.15·4 + 0.35·4.
        let raw1 = 0.5 * 5.0 + 0.15 * 4.0 + 0.35 * 4.0;
        let raw2 = 0.5 * 3.0 + 0.15 * 4.0 + 0.35 * 4.0;
        assert!((by(1).raw_score.unwrap() - raw1).abs() < 1e-9);
        assert!((by(2).raw_score.unwrap() - raw2).abs() < 1e-9);
        // Smoothed toward the category mean with n = 30, m = 30.
        let c = (raw1 + raw2) / 2.0;
        assert_eq!(
            by(1).score,
            Some(f::round2((30.0 * raw1 + 30.0 * c) / 60.0))
        );
        assert_eq!(by(4).raw_score, None);
        assert_eq!(by(4).tier, "unrated");
        // A lone shop ranks in the middle: 4.0 everywhere → 4.0.
        assert_eq!(by(3).score, Some(4.0));
        assert_eq!(by(3).tier, "restricted");
    }

    #[test]
    fn too_few_orders_is_not_enough_data() {
        let r = ScoreRules::default_set();
        let mut inp = HashMap::new();
        inp.insert(1, inputs(29, 0.0, 10.0));
        let out = compute(&[(1, 1)], &inp, &HashMap::new(), &r);
        assert!(out[0].raw_score.is_some());
        assert_eq!(out[0].score, None);
        assert_eq!(out[0].tier, "unrated");
    }

    #[test]
    fn recommendations_take_the_best_two_active_with_sales() {
        let r = ScoreRules::default_set();
        let mk = |id, cat, score: f64, recent, tier| Scored {
            shop_id: id,
            category_id: cat,
            rating_count: 0,
            dsr: [None; 3],
            dsr_vs: [None; 3],
            valid_orders: 50,
            raw_score: Some(score),
            score: Some(score),
            dims: [None; 3],
            metrics: String::new(),
            tier,
            low_days: 0,
            recent_orders: recent,
            sums: String::new(),
        };
        let scored = vec![
            mk(1, 1, 4.9, 5, "boost"),
            mk(2, 1, 4.5, 5, "normal"),
            mk(3, 1, 4.7, 5, "normal"),
            mk(4, 1, 4.95, 0, "boost"),
            mk(5, 1, 4.99, 5, "boost"),
            mk(6, 2, 4.1, 5, "restricted"),
        ];
        // Shop 5 is not active (e.g. suspended); shop 4 has no recent sales; shop 6's tier
        // is restricted.
        let picks = recommend(&scored, &HashSet::from([1, 2, 3, 4, 6]), &r);
        assert_eq!(picks, vec![(1, 1, 4.9), (1, 3, 4.7)]);
    }

    #[test]
    fn platform_day_boundaries() {
        let tz: chrono_tz::Tz = "Asia/Shanghai".parse().unwrap();
        let d = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        // Shanghai midnight is 16:00 UTC the day before.
        assert_eq!(
            day_start(tz, d),
            NaiveDate::from_ymd_opt(2026, 11, 29)
                .unwrap()
                .and_hms_opt(16, 0, 0)
                .unwrap()
        );
        let t = NaiveDate::from_ymd_opt(2026, 11, 29)
            .unwrap()
            .and_hms_opt(16, 30, 0)
            .unwrap();
        assert_eq!(platform_day(tz, t), d);
    }
}
