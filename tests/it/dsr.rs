//! The nightly scoring job on both backends: hand-computed DSR (repeat-buyer cap, window,
//! peer comparison), not-enough-data, idempotency, four processes at once, a run killed
//! midway and resumed, backfill with consecutive-day clearance and tier emails.

use chrono::{Duration, NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use haodian::db::schema::{
    audit_log, checkouts, dsr_snapshots as snap, job_runs, mail_outbox, orders, products, shops,
    users,
};
use haodian::db::DbConn;
use haodian::dsr::job::{self, day_start, RunOutcome};
use haodian::dsr::rules::{self, ScoreRules};

use crate::common::{test_settings, unique, TestDb};

const BIN: &str = env!("CARGO_BIN_EXE_haodian");

fn tz() -> chrono_tz::Tz {
    "Asia/Shanghai".parse().unwrap()
}

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// An instant `h` hours into platform day `day`.
fn at(day: &str, h: i64) -> NaiveDateTime {
    day_start(tz(), d(day)) + Duration::hours(h)
}

fn open(db: &TestDb) -> haodian::db::Pool {
    haodian::app::open_database(&test_settings(db)).unwrap()
}

fn category(c: &mut DbConn, slug: &str) -> i64 {
    use haodian::db::schema::categories;
    categories::table
        .filter(categories::slug.eq(slug))
        .select(categories::id)
        .first(c)
        .unwrap()
}

fn user(c: &mut DbConn, handle: &str) -> i64 {
    let t = at("2025-01-01", 0);
    diesel::insert_into(users::table)
        .values((
            users::email.eq(format!("{handle}@example.com")),
            users::handle.eq(handle),
            users::display_name.eq(handle),
            users::password_hash.eq("x"),
            users::bio.eq(""),
            users::password_changed_at.eq(t),
            users::created_at.eq(t),
            users::updated_at.eq(t),
        ))
        .execute(c)
        .unwrap();
    users::table
        .filter(users::handle.eq(handle))
        .select(users::id)
        .first(c)
        .unwrap()
}

fn shop(c: &mut DbConn, slug: &str, cat: &str) -> i64 {
    let owner = user(c, &format!("{slug}_owner"));
    let cat = category(c, cat);
    let t = at("2025-01-01", 0);
    diesel::insert_into(shops::table)
        .values((
            shops::slug.eq(slug),
            shops::name.eq(format!("店铺 {slug}")),
            shops::description.eq(""),
            shops::main_category_id.eq(cat),
            shops::entity_type.eq("individual"),
            shops::official_user_id.eq(owner),
            shops::status.eq("active"),
            shops::created_at.eq(t),
            shops::updated_at.eq(t),
        ))
        .execute(c)
        .unwrap();
    shops::table
        .filter(shops::slug.eq(slug))
        .select(shops::id)
        .first(c)
        .unwrap()
}

/// A completed order paid at `paid`, shipped and delivered after the given hours.
fn order(
    c: &mut DbConn,
    shop: i64,
    buyer: i64,
    total: i64,
    paid: NaiveDateTime,
    ship_h: Option<i64>,
    deliver_h: Option<i64>,
) -> i64 {
    let key = unique("k");
    diesel::insert_into(checkouts::table)
        .values((
            checkouts::buyer_id.eq(buyer),
            checkouts::idem_key.eq(&key),
            checkouts::total_fen.eq(total),
            checkouts::created_at.eq(paid),
        ))
        .execute(c)
        .unwrap();
    let checkout: i64 = checkouts::table
        .filter(checkouts::idem_key.eq(&key))
        .select(checkouts::id)
        .first(c)
        .unwrap();
    let shipped = ship_h.map(|h| paid + Duration::hours(h));
    let delivered = deliver_h.and_then(|h| shipped.map(|s| s + Duration::hours(h)));
    let no = unique("no");
    diesel::insert_into(orders::table)
        .values((
            orders::order_no.eq(&no),
            orders::checkout_id.eq(checkout),
            orders::buyer_id.eq(buyer),
            orders::shop_id.eq(shop),
            orders::status.eq(if delivered.is_some() {
                "completed"
            } else if shipped.is_some() {
                "shipped"
            } else {
                "paid"
            }),
            orders::items_fen.eq(total),
            orders::shipping_fen.eq(0i64),
            orders::total_fen.eq(total),
            orders::refunded_fen.eq(0i64),
            orders::recipient.eq("收件人"),
            orders::phone.eq("13800000000"),
            orders::region.eq("上海"),
            orders::address_detail.eq("某路 1 号"),
            orders::buyer_note.eq(""),
            orders::cancel_reason.eq(""),
            orders::created_at.eq(paid),
            orders::pay_deadline.eq(paid),
            orders::paid_at.eq(Some(paid)),
            orders::shipped_at.eq(shipped),
            orders::delivered_at.eq(delivered),
            orders::completed_at.eq(delivered),
            orders::updated_at.eq(paid),
        ))
        .execute(c)
        .unwrap();
    orders::table
        .filter(orders::order_no.eq(&no))
        .select(orders::id)
        .first(c)
        .unwrap()
}

/// The buyer rates the order at `when`, through the ratings service (which places the rating
/// among the buyer's ratings of the shop that month).
fn rate(c: &mut DbConn, order: i64, stars: (i64, i64, i64), when: NaiveDateTime) {
    let (no, buyer): (String, i64) = orders::table
        .find(order)
        .select((orders::order_no, orders::buyer_id))
        .first(c)
        .unwrap();
    let me = haodian::accounts::SessionUser {
        id: buyer,
        session_id: 0,
        email: String::new(),
        handle: String::new(),
        display_name: String::new(),
        roles: Vec::new(),
        locale: None,
        email_verified: true,
        avatar_media_id: None,
        mfa: Default::default(),
    };
    let month = haodian::dsr::job::platform_day(tz(), when)
        .format("%Y-%m")
        .to_string();
    let form = haodian::ratings::service::RatingForm {
        described: stars.0,
        service: stars.1,
        logistics: stars.2,
        body: String::new(),
    };
    haodian::ratings::service::rate(c, &me, &no, &form, &[], when, &month).unwrap();
}

/// Rates a new order of `buyer` at `shop` at `when`.
fn rated(c: &mut DbConn, shop: i64, buyer: i64, stars: (i64, i64, i64), when: NaiveDateTime) {
    let o = order(
        c,
        shop,
        buyer,
        5000,
        when - Duration::days(3),
        Some(5),
        Some(30),
    );
    rate(c, o, stars, when);
}

/// A refund request on `order` (by its buyer) asked for at `requested` for a reason of
/// `category`, `status` since `decided`.
fn refund(
    c: &mut DbConn,
    order: i64,
    category: &str,
    status: &str,
    requested: NaiveDateTime,
    decided: Option<NaiveDateTime>,
) {
    use haodian::db::schema::refunds;
    let (shop, buyer): (i64, i64) = orders::table
        .find(order)
        .select((orders::shop_id, orders::buyer_id))
        .first(c)
        .unwrap();
    diesel::insert_into(refunds::table)
        .values((
            refunds::order_id.eq(order),
            refunds::shop_id.eq(shop),
            refunds::buyer_id.eq(buyer),
            refunds::kind.eq("refund_only"),
            refunds::reason.eq(category),
            refunds::reason_category.eq(category),
            refunds::amount_fen.eq(100i64),
            refunds::status.eq(status),
            refunds::respond_by.eq(requested + Duration::hours(48)),
            refunds::requested_at.eq(requested),
            refunds::decided_at.eq(decided),
            refunds::completed_at.eq(decided.filter(|_| status == "refunded")),
        ))
        .execute(c)
        .unwrap();
}

/// A complaint about `order` (by its buyer) made at `made`, ruled at `ruled` (at fault?).
fn complaint(
    c: &mut DbConn,
    order: i64,
    made: NaiveDateTime,
    ruled: Option<(NaiveDateTime, bool)>,
) {
    use haodian::db::schema::complaints;
    let (shop, buyer): (i64, i64) = orders::table
        .find(order)
        .select((orders::shop_id, orders::buyer_id))
        .first(c)
        .unwrap();
    diesel::insert_into(complaints::table)
        .values((
            complaints::shop_id.eq(shop),
            complaints::buyer_id.eq(buyer),
            complaints::order_id.eq(Some(order)),
            complaints::reason.eq("quality"),
            complaints::body.eq("坏了"),
            complaints::status.eq(if ruled.is_some() { "ruled" } else { "open" }),
            complaints::merchant_at_fault.eq(ruled.map(|r| r.1)),
            complaints::created_at.eq(made),
            complaints::ruled_at.eq(ruled.map(|r| r.0)),
        ))
        .execute(c)
        .unwrap();
}

#[derive(Debug, PartialEq, Queryable)]
struct SnapRow {
    shop: i64,
    day: String,
    rating_count: i64,
    described: Option<f64>,
    service: Option<f64>,
    described_vs: Option<f64>,
    logistics_vs: Option<f64>,
    valid_orders: i64,
    raw: Option<f64>,
    score: Option<f64>,
    metrics: String,
    tier: String,
    low_days: i64,
}

fn snapshots(c: &mut DbConn) -> Vec<SnapRow> {
    snap::table
        .order((snap::day, snap::shop_id))
        .select((
            snap::shop_id,
            snap::day,
            snap::rating_count,
            snap::described,
            snap::service,
            snap::described_vs,
            snap::logistics_vs,
            snap::valid_orders,
            snap::raw_score,
            snap::score,
            snap::metrics,
            snap::tier,
            snap::low_days,
        ))
        .load(c)
        .unwrap()
}

fn snap_of(c: &mut DbConn, shop: i64, day: &str) -> SnapRow {
    snapshots(c)
        .into_iter()
        .find(|s| s.shop == shop && s.day == day)
        .unwrap_or_else(|| panic!("no snapshot for shop {shop} on {day}"))
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-9)
}

fn run(pool: &haodian::db::Pool, db: &TestDb, day: &str) -> RunOutcome {
    let s = test_settings(db);
    job::run(
        &mut pool.get().unwrap(),
        &s,
        d(day),
        "test-node",
        at("2026-11-30", 3),
    )
    .unwrap()
}

#[test]
fn dsr_by_hand_computed_examples() {
    let db = TestDb::new();
    let pool = open(&db);
    let c = &mut *pool.get().unwrap();
    let a = shop(c, "shop-a", "apparel");
    let b = shop(c, "shop-b", "apparel");
    let e = shop(c, "shop-e", "apparel");
    let lone = shop(c, "shop-lone", "food");
    let (x, y) = (user(c, "buyer_x"), user(c, "buyer_y"));
    // Buyer x rates shop a five times in November: only the first three count (5, 5, 5);
    // the two 1-star ratings that follow are shown but not counted.
    for (i, stars) in [5, 5, 5, 1, 1].into_iter().enumerate() {
        rated(c, a, x, (stars, 4, 3), at("2026-11-02", 2 + i as i64));
    }
    // Three in October count in October: the cap is per calendar month.
    for i in 0..3 {
        rated(c, a, x, (5, 4, 3), at("2026-10-10", i));
    }
    // Buyer y: one rating in the window, one too old (over 180 days), one after the day.
    rated(c, a, y, (2, 2, 2), at("2026-11-15", 1));
    rated(c, a, y, (1, 1, 1), at("2026-05-01", 1));
    rated(c, a, y, (1, 1, 1), at("2026-11-21", 1));
    // Counted for a: described 5,5,5,5,5,5,2 → 32/7; service 4×6 + 2 = 26/7.
    let da = 32.0 / 7.0;
    rated(c, b, y, (4, 4, 4), at("2026-11-01", 0));
    rated(c, e, y, (3, 3, 3), at("2026-11-01", 0));
    rated(c, lone, y, (5, 5, 5), at("2026-11-01", 0));

    assert!(matches!(
        run(&pool, &db, "2026-11-20"),
        RunOutcome::Scored(_)
    ));
    let sa = snap_of(c, a, "2026-11-20");
    assert_eq!(sa.rating_count, 7, "counted ratings");
    assert!(close(sa.described, da), "{:?}", sa.described);
    assert!(close(sa.service, 26.0 / 7.0), "{:?}", sa.service);
    // Peers in apparel: a 32/7, b 4, e 3 → mean m = (32/7 + 7) / 3.
    let m = (da + 7.0) / 3.0;
    assert!(
        close(sa.described_vs, (da - m) / (da - m)),
        "a is the maximum: +100%"
    );
    let sb = snap_of(c, b, "2026-11-20");
    assert!(
        close(sb.described_vs, (4.0 - m) / (da - m)),
        "{:?}",
        sb.described_vs
    );
    let se = snap_of(c, e, "2026-11-20");
    assert!(close(se.described_vs, -1.0), "e is the minimum: −100%");
    // A category of one shop shows no comparison.
    let sl = snap_of(c, lone, "2026-11-20");
    assert!(close(sl.described, 5.0));
    assert_eq!(sl.described_vs, None);
    // Few orders: no score, tier unrated.
    assert_eq!(sa.score, None);
    assert_eq!(sa.tier, "unrated");
}

/// Two apparel shops with 40 valid orders each: `good` ships in 2 h and delivers in a day,
/// `bad` ships after 50 h (no credit) and delivers in four days, and every fourth of its
/// orders gets a bad review.
fn scored_world(c: &mut DbConn, day: &str) -> (i64, i64) {
    let good = shop(c, "good", "apparel");
    let bad = shop(c, "bad", "apparel");
    let buyer = user(c, "many");
    for i in 0..40 {
        let paid = at(day, -24 * (3 + i % 40) - 5);
        order(c, good, buyer, 9900, paid, Some(2), Some(24));
        let o = order(c, bad, buyer, 9900, paid, Some(50), Some(96));
        if i % 4 == 0 {
            rate(c, o, (1, 2, 2), paid + Duration::days(6));
        }
    }
    // Orders under ¥2 are not valid orders.
    for _ in 0..5 {
        order(c, good, buyer, 100, at(day, -30), Some(1), Some(10));
    }
    (good, bad)
}

#[test]
fn experience_score_ranks_smooths_and_reruns_change_nothing() {
    let db = TestDb::new();
    let pool = open(&db);
    let c = &mut *pool.get().unwrap();
    let (good, bad) = scored_world(c, "2026-11-20");
    let RunOutcome::Scored(first) = run(&pool, &db, "2026-11-20") else {
        panic!("first run scores")
    };
    assert_eq!(first.written, 2);
    let g = snap_of(c, good, "2026-11-20");
    let b = snap_of(c, bad, "2026-11-20");
    assert_eq!(g.valid_orders, 40, "orders under ¥2 excluded");
    // Percent ranks in a category of two: best 1 → 5.0 points, worst 0 → 3.0, a tie 0.5 →
    // 4.0. Product: bad reviews good 5 / bad 3, quality refunds tied (none) 4 / 4. Logistics:
    // ship in time and delivery time good 5 / bad 3. Service: complaints and at-fault rulings
    // tied (none) 4 / 4; refund handling absent.
    let raw_g = 0.5 * (5.0 + 4.0) / 2.0 + 0.15 * 5.0 + 0.35 * 4.0;
    let raw_b = 0.5 * (3.0 + 4.0) / 2.0 + 0.15 * 3.0 + 0.35 * 4.0;
    assert!(close(g.raw, raw_g), "{:?}", g.raw);
    assert!(close(b.raw, raw_b), "{:?}", b.raw);
    let cm = (raw_g + raw_b) / 2.0;
    let want = |x: f64| ((40.0 * x + 30.0 * cm) / 70.0 * 100.0).round() / 100.0;
    assert!(
        close(g.score, want(raw_g)),
        "{:?} vs {}",
        g.score,
        want(raw_g)
    );
    assert!(close(b.score, want(raw_b)));
    // The metrics behind the score are kept: bad's ship-in-time is 0 of 40 weighted orders.
    let metrics: serde_json::Value = serde_json::from_str(&b.metrics).unwrap();
    assert_eq!(metrics["ship_in_time"]["value"].as_f64(), Some(0.0));
    assert_eq!(metrics["ship_in_time"]["rank"].as_f64(), Some(0.0));
    assert!(metrics["bad_review_rate"]["num"].as_f64().unwrap() > 0.0);

    // Running the day again: the lease says done; scoring it again anyway writes nothing
    // and mails nothing.
    let before = snapshots(c);
    let mails: i64 = mail_outbox::table.count().get_result(c).unwrap();
    assert_eq!(run(&pool, &db, "2026-11-20"), RunOutcome::AlreadyDone);
    let again = job::score_day(
        c,
        &test_settings(&db),
        d("2026-11-20"),
        at("2026-11-30", 4),
        None,
    )
    .unwrap();
    assert_eq!(again.written, 0);
    assert_eq!(again.emails, 0);
    assert_eq!(snapshots(c), before);
    assert_eq!(
        mail_outbox::table.count().get_result::<i64>(c).unwrap(),
        mails
    );
}

#[test]
fn backfill_counts_low_days_and_clears_the_shop_once() {
    let db = TestDb::new();
    let pool = open(&db);
    let c = &mut *pool.get().unwrap();
    let (good, bad) = scored_world(c, "2026-11-18");
    // Rules v2: no smoothing, cleared after 2 consecutive days below 3.2.
    let mut r = ScoreRules::default_set();
    r.smoothing_m = 0.0;
    r.clearance_days = 2;
    rules::save(c, &r, "test", None, at("2026-11-01", 0)).unwrap();
    let mut tiers = Vec::new();
    for day in ["2026-11-16", "2026-11-17", "2026-11-18"] {
        run(&pool, &db, day);
        tiers.push(snap_of(c, bad, day));
    }
    // Unsmoothed, bad scores 0.5·3.5 + 0.15·3 + 0.35·4 = 3.6 (barred, not yet on watch) and
    // good 0.5·4.5 + 0.15·5 + 0.35·4 = 4.4 (normal).
    assert!(close(tiers[0].score, 3.6), "{:?}", tiers[0].score);
    assert!(tiers.iter().all(|t| t.tier == "barred" && t.low_days == 0));
    assert!(close(snap_of(c, good, "2026-11-16").score, 4.4));
    assert_eq!(snap_of(c, good, "2026-11-16").tier, "normal");
    // A stricter rule version: clearance watch below 3.7. Two days on watch clear the shop.
    let mut harsher = r.clone();
    harsher.tier_clearance = 3.7;
    rules::save(c, &harsher, "test 2", None, at("2026-11-01", 0)).unwrap();
    run(&pool, &db, "2026-11-19");
    let s19 = snap_of(c, bad, "2026-11-19");
    assert_eq!((s19.tier.as_str(), s19.low_days), ("watch", 1));
    run(&pool, &db, "2026-11-20");
    let s20 = snap_of(c, bad, "2026-11-20");
    assert_eq!((s20.tier.as_str(), s20.low_days), ("cleared", 2));
    let status: String = shops::table
        .find(bad)
        .select(shops::status)
        .first(c)
        .unwrap();
    assert_eq!(status, "cleared");
    let audits: i64 = audit_log::table
        .filter(audit_log::action.eq("dsr.clear"))
        .filter(audit_log::shop_id.eq(Some(bad)))
        .count()
        .get_result(c)
        .unwrap();
    assert_eq!(audits, 1);
    let cleared_mail: i64 = mail_outbox::table
        .filter(mail_outbox::kind.eq("shop_cleared"))
        .count()
        .get_result(c)
        .unwrap();
    assert_eq!(cleared_mail, 1);
    // The tier changes (none → barred on the first day, barred → watch) were mailed once each.
    let tier_mail: i64 = mail_outbox::table
        .filter(mail_outbox::kind.eq("dsr_tier"))
        .filter(mail_outbox::to_addr.eq("bad_owner@example.com"))
        .count()
        .get_result(c)
        .unwrap();
    assert_eq!(tier_mail, 2);
    // A cleared shop is no longer scored.
    run(&pool, &db, "2026-11-21");
    assert!(snapshots(c)
        .iter()
        .all(|s| !(s.shop == bad && s.day == "2026-11-21")));
    let listed: i64 = products::table
        .filter(products::shop_id.eq(bad))
        .filter(products::status.eq("listed"))
        .count()
        .get_result(c)
        .unwrap();
    assert_eq!(listed, 0);
}

/// `haodian dsr score --date D` on `db`, with extra environment.
fn cli(db: &TestDb, day: &str, env: &[(&str, &str)]) -> std::process::Child {
    let mut cmd = std::process::Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("HAODIAN_") {
            cmd.env_remove(k);
        }
    }
    cmd.args(["dsr", "score", "--date", day])
        .env("DATABASE_URL", &db.url)
        .env("MAIL_URL", "log")
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

fn many_shops(c: &mut DbConn, n: usize) {
    let buyer = user(c, "crowd");
    for i in 0..n {
        let cat = ["apparel", "food", "cosmetics"][i % 3];
        let s = shop(c, &format!("s{i}"), cat);
        for k in 0..(i % 5 + 1) {
            let paid = at("2026-11-20", -24 * (k as i64 + 2));
            let o = order(
                c,
                s,
                buyer,
                2000 + k as i64,
                paid,
                Some(i as i64 % 50),
                Some(30),
            );
            rate(
                c,
                o,
                (1 + (i + k) as i64 % 5, 5, 4),
                paid + Duration::days(4),
            );
        }
    }
}

#[test]
fn four_processes_at_once_score_once() {
    let db = TestDb::new();
    let pool = open(&db);
    many_shops(&mut pool.get().unwrap(), 12);
    let children: Vec<_> = (0..4).map(|_| cli(&db, "2026-11-20", &[])).collect();
    let outs: Vec<_> = children
        .into_iter()
        .map(|ch| ch.wait_with_output().unwrap())
        .collect();
    let mut scored = 0;
    for o in &outs {
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "{:?}: {text}{}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
        if text.contains("snapshots written") {
            scored += 1;
        } else {
            assert!(text.contains("nothing to do"), "{text}");
        }
    }
    assert_eq!(scored, 1, "exactly one process computed");
    let c = &mut *pool.get().unwrap();
    let runs: Vec<(String, i64)> = job_runs::table
        .filter(job_runs::job.eq("dsr.score"))
        .select((job_runs::status, job_runs::attempts))
        .load(c)
        .unwrap();
    assert_eq!(runs, vec![("done".to_string(), 1)]);
    assert_eq!(snapshots(c).len(), 12);
}

#[test]
fn a_run_killed_midway_resumes_to_the_clean_result() {
    let (killed, clean) = (TestDb::new(), TestDb::new());
    let (pk, pc) = (open(&killed), open(&clean));
    many_shops(&mut pk.get().unwrap(), 12);
    many_shops(&mut pc.get().unwrap(), 12);
    let batch = [("HAODIAN_DSR_BATCH", "5")];
    // The first process dies right after committing its first batch of five.
    let out = cli(
        &killed,
        "2026-11-20",
        &[batch[0], ("HAODIAN_FAULT_DSR_EXIT_AFTER_BATCHES", "1")],
    )
    .wait_with_output()
    .unwrap();
    assert!(!out.status.success());
    assert_eq!(snapshots(&mut pk.get().unwrap()).len(), 5);
    // The next run takes the dead process's lease over and finishes the day.
    let out = cli(&killed, "2026-11-20", &batch)
        .wait_with_output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}");
    assert!(text.contains("7 snapshots written"), "{text}");
    let out = cli(&clean, "2026-11-20", &batch)
        .wait_with_output()
        .unwrap();
    assert!(out.status.success());
    // Same rows as an uninterrupted run (shop ids match: both worlds were built alike).
    assert_eq!(
        snapshots(&mut pk.get().unwrap()),
        snapshots(&mut pc.get().unwrap())
    );
    let attempts: i64 = job_runs::table
        .filter(job_runs::job.eq("dsr.score"))
        .select(job_runs::attempts)
        .first(&mut pk.get().unwrap())
        .unwrap();
    assert_eq!(attempts, 2);
}

#[test]
fn scale_seed_makes_scorable_data() {
    use haodian::db::schema::{complaints, ratings, refunds};
    let db = TestDb::new();
    let pool = open(&db);
    // The load drops the indexes (and on PostgreSQL the foreign keys) of the tables it fills
    // and makes them again: the schema afterwards is the schema before.
    #[derive(QueryableByName, Debug, PartialEq)]
    struct Ddl {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    let schema = |c: &mut DbConn| -> Vec<Ddl> {
        let sql = if db.is_postgres() {
            "SELECT indexdef AS name FROM pg_indexes WHERE schemaname = current_schema() \
             UNION ALL SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint \
             WHERE connamespace = current_schema()::regnamespace ORDER BY 1"
        } else {
            "SELECT type || ' ' || name || ' ' || coalesce(sql, '') AS name FROM sqlite_master ORDER BY 1"
        };
        haodian::per_backend!(c, |c| diesel::sql_query(sql).load::<Ddl>(c)).unwrap()
    };
    let before = schema(&mut pool.get().unwrap());
    assert!(before.len() > 50, "{before:?}");
    // Ratings without shops to put them in: a one-line usage error, nothing written.
    let refused = std::process::Command::new(BIN)
        .args(["seed", "--shops", "0", "--ratings", "10"])
        .env("DATABASE_URL", &db.url)
        .env("MAIL_URL", "log")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--shops 1 or more") && err.trim().lines().count() == 1,
        "{err}"
    );
    assert_eq!(
        ratings::table
            .count()
            .get_result::<i64>(&mut pool.get().unwrap())
            .unwrap(),
        0
    );
    let out = std::process::Command::new(BIN)
        .args(["seed", "--shops", "30", "--ratings", "3000"])
        .env("DATABASE_URL", &db.url)
        .env("MAIL_URL", "log")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c = &mut *pool.get().unwrap();
    assert_eq!(schema(c), before);
    assert_eq!(ratings::table.count().get_result::<i64>(c).unwrap(), 3000);
    assert_eq!(orders::table.count().get_result::<i64>(c).unwrap(), 3900);
    assert!(refunds::table.count().get_result::<i64>(c).unwrap() > 0);
    assert!(complaints::table.count().get_result::<i64>(c).unwrap() > 0);
    // Every rating belongs to a completed order of its buyer at its shop.
    let mismatched: i64 = ratings::table
        .inner_join(orders::table)
        .filter(
            orders::status
                .ne("completed")
                .or(orders::buyer_id.ne(ratings::buyer_id))
                .or(orders::shop_id.ne(ratings::shop_id)),
        )
        .count()
        .get_result(c)
        .unwrap();
    assert_eq!(mismatched, 0);
    // The job scores it: every shop gets a snapshot, shops with enough orders a score.
    let day =
        haodian::dsr::job::platform_day(tz(), chrono::Utc::now().naive_utc()) - Duration::days(1);
    let RunOutcome::Scored(s) = job::run(
        c,
        &test_settings(&db),
        day,
        "test",
        chrono::Utc::now().naive_utc(),
    )
    .unwrap() else {
        panic!("scored")
    };
    assert_eq!((s.shops, s.written), (30, 30));
    assert!(s.scored > 0);
}

#[test]
fn refund_handling_time_is_the_median_of_the_decided_requests() {
    let db = TestDb::new();
    let pool = open(&db);
    let c = &mut *pool.get().unwrap();
    let (a, b) = (shop(c, "ref-a", "apparel"), shop(c, "ref-b", "apparel"));
    let buyer = user(c, "refunder");
    // (shop, hours to decide; None = not decided, requested days before the scored day)
    let cases: [(i64, Option<i64>, i64); 9] = [
        (a, Some(30), 5),
        (a, Some(2), 5),
        (a, Some(10), 6),
        (a, Some(4), 7),
        (a, None, 4),      // still waiting: not counted
        (a, Some(1), 120), // requested before the 90-day window: not counted
        (a, Some(200), 1), // decided after the end of the day: not counted
        (b, Some(9), 3),
        (b, Some(1), 3),
    ];
    let mut cases = cases.to_vec();
    cases.push((b, Some(5), 8));
    for (shop, hours, days_before) in cases {
        let requested = at("2026-11-20", 12) - Duration::days(days_before);
        let o = order(
            c,
            shop,
            buyer,
            5000,
            requested - Duration::days(2),
            Some(5),
            Some(20),
        );
        let decided = hours.map(|h| requested + Duration::hours(h));
        let status = if decided.is_some() {
            "refunded"
        } else {
            "requested"
        };
        refund(c, o, "other", status, requested, decided);
    }
    assert!(matches!(
        run(&pool, &db, "2026-11-20"),
        RunOutcome::Scored(_)
    ));
    let mut metric = |shop: i64| {
        let m: serde_json::Value =
            serde_json::from_str(&snap_of(c, shop, "2026-11-20").metrics).unwrap();
        let r = &m["refund_hours"];
        (r["value"].as_f64(), r["den"].as_f64(), r["rank"].as_f64())
    };
    // a: 2, 4, 10, 30 → the mean of the middle two, 7 h, over 4 requests; b: 1, 5, 9 → 5 h.
    // (SQLite's julianday arithmetic is exact to about a millisecond.)
    let (value, den, rank) = metric(a);
    assert!((value.unwrap() - 7.0).abs() < 1e-6, "{value:?}");
    assert_eq!((den, rank), (Some(4.0), Some(0.0)));
    let (value, den, rank) = metric(b);
    assert!((value.unwrap() - 5.0).abs() < 1e-6, "{value:?}");
    assert_eq!((den, rank), (Some(3.0), Some(1.0)));
}

/// The nightly run carries the ratings' and the lagged window's sums on from yesterday's
/// snapshot (the day's changes in, the day that left each window out); day after day that
/// must give what a full pass over the windows gives: the same counted ratings and star
/// totals, the same weighted bad reviews, quality refunds, complaints and at-fault rulings to
/// rounding, and so the same scores, ranks and tiers. Among them a shop whose only bad
/// reviews age out of the window (its rate must be exactly 0 again, tied with the shops that
/// never had one), a buyer over the monthly cap, refunds rejected and complaints ruled on
/// later days, and orders coming into and leaving the lagged window.
#[test]
fn carried_sums_match_a_full_pass_day_after_day() {
    use rand::{Rng, SeedableRng};
    let db = TestDb::new();
    let pool = open(&db);
    let c = &mut *pool.get().unwrap();
    let apparel: Vec<i64> = (0..4)
        .map(|i| shop(c, &format!("carry-{i}"), "apparel"))
        .collect();
    let food = shop(c, "carry-food", "food");
    let buyers: Vec<i64> = (0..4).map(|i| user(c, &format!("carry_b{i}"))).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(20261202);
    let first = day_start(tz(), d("2026-05-10"));
    let span = (day_start(tz(), d("2026-11-20")) - first).num_minutes();
    for _ in 0..150 {
        let s = if rng.gen_bool(0.2) {
            food
        } else {
            apparel[rng.gen_range(0..3)]
        };
        let stars = (
            rng.gen_range(1..=5),
            rng.gen_range(1..=5),
            rng.gen_range(1..=5),
        );
        let when = first + Duration::minutes(rng.gen_range(0..span));
        rated(c, s, buyers[rng.gen_range(0..4)], stars, when);
    }
    // The fourth apparel shop: two bad reviews that leave the 90-day window during the run
    // (mid-August), otherwise good ones; one buyer rates it five times in one month.
    let last = apparel[3];
    rated(c, last, buyers[0], (1, 3, 3), at("2026-08-10", 5));
    rated(c, last, buyers[1], (2, 3, 3), at("2026-08-13", 20));
    for i in 0..5 {
        rated(c, last, buyers[2], (5, 5, 4), at("2026-10-03", i));
    }
    // Orders with quality refunds (some rejected later) and complaints (some ruled the
    // merchant's fault later), paid so that some come into the lagged window (paid 15 to 104
    // days ago) and some leave it while the days are scored, with events on those days.
    let mut lagged = 0;
    for k in 0..60 {
        let s = apparel[k % 4];
        let buyer = buyers[k % 4];
        let paid = if k % 2 == 0 {
            at("2026-07-18", 0)
        } else {
            at("2026-10-14", 0)
        } + Duration::hours(rng.gen_range(0..26 * 24));
        let o = order(c, s, buyer, 9900, paid, Some(10), Some(30));
        let t = paid + Duration::hours(rng.gen_range(48..40 * 24));
        if rng.gen_bool(0.6) {
            let rejected = rng
                .gen_bool(0.4)
                .then(|| t + Duration::hours(rng.gen_range(1..9 * 24)));
            let status = if rejected.is_some() {
                "rejected"
            } else {
                "refunded"
            };
            refund(
                c,
                o,
                "quality",
                status,
                t,
                rejected.or(Some(t + Duration::hours(5))),
            );
            lagged += 1;
        }
        if rng.gen_bool(0.5) {
            let ruled = rng
                .gen_bool(0.5)
                .then(|| t + Duration::hours(rng.gen_range(1..12 * 24)));
            complaint(c, o, t, ruled.map(|r| (r, rng.gen_bool(0.7))));
            lagged += 1;
        }
    }
    assert!(lagged > 30);
    // And for certain, on orders in the lagged window all along: a quality refund rejected
    // on 11-10 (counted until then) and a complaint ruled the merchant's fault on 11-15.
    let o = order(
        c,
        apparel[0],
        buyers[0],
        9900,
        at("2026-10-01", 3),
        Some(10),
        Some(30),
    );
    refund(
        c,
        o,
        "quality",
        "rejected",
        at("2026-10-20", 0),
        Some(at("2026-11-10", 9)),
    );
    let o = order(
        c,
        apparel[1],
        buyers[1],
        9900,
        at("2026-10-01", 3),
        Some(10),
        Some(30),
    );
    complaint(c, o, at("2026-10-25", 0), Some((at("2026-11-15", 9), true)));
    // Enough valid orders for a score everywhere in apparel.
    for &s in &apparel {
        for i in 0..35 {
            order(
                c,
                s,
                buyers[i % 4],
                9900,
                at("2026-10-01", 7 * i as i64),
                Some(3 + (s + i as i64) % 40),
                Some(30),
            );
        }
    }

    let days: Vec<NaiveDate> = (0..16)
        .map(|k| d("2026-11-05") + Duration::days(k))
        .collect();
    for (k, day) in days.iter().enumerate() {
        let RunOutcome::Scored(s) = run(&pool, &db, &day.to_string()) else {
            panic!("{day} scored")
        };
        assert_eq!(s.carried, k > 0, "{day}: only the first day is a full pass");
    }
    let bad_of = |c: &mut DbConn, day: &str| {
        let m: serde_json::Value = serde_json::from_str(&snap_of(c, last, day).metrics).unwrap();
        m["bad_review_rate"]["num"].as_f64()
    };
    assert!(
        bad_of(c, "2026-11-06").unwrap() > 0.0,
        "still in the window"
    );
    assert_eq!(
        bad_of(c, "2026-11-20"),
        Some(0.0),
        "aged out: exactly nothing"
    );
    // The lagged metrics are there to compare, and change from day to day.
    let lag_of = |c: &mut DbConn, day: &str| -> Vec<Option<f64>> {
        apparel
            .iter()
            .flat_map(|&s| {
                let m: serde_json::Value =
                    serde_json::from_str(&snap_of(c, s, day).metrics).unwrap();
                ["quality_refund_rate", "complaint_rate", "at_fault_rate"]
                    .map(|k| m[k]["num"].as_f64())
            })
            .collect()
    };
    let (early, late) = (lag_of(c, "2026-11-06"), lag_of(c, "2026-11-19"));
    assert!(
        early.iter().filter(|v| v.is_some_and(|v| v > 0.0)).count() >= 6,
        "{early:?}"
    );
    assert_ne!(early, late);

    // Score three of those days again as full passes (yesterday's run forgotten, so there is
    // nothing to carry) and compare.
    for day in ["2026-11-20", "2026-11-12", "2026-11-06"] {
        let carried: Vec<SnapRow> = snapshots(c).into_iter().filter(|s| s.day == day).collect();
        assert_eq!(carried.len(), 5);
        let before = (d(day) - Duration::days(1)).to_string();
        diesel::delete(job_runs::table.filter(job_runs::period.eq_any([day, before.as_str()])))
            .execute(c)
            .unwrap();
        diesel::delete(snap::table.filter(snap::day.eq(day)))
            .execute(c)
            .unwrap();
        let RunOutcome::Scored(s) = run(&pool, &db, day) else {
            panic!("{day} scored again")
        };
        assert!(!s.carried, "{day}: full pass");
        let full: Vec<SnapRow> = snapshots(c).into_iter().filter(|s| s.day == day).collect();
        for (a, b) in carried.iter().zip(&full) {
            let near = |x: Option<f64>, y: Option<f64>| match (x, y) {
                (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(1.0),
                (x, y) => x == y,
            };
            assert_eq!(
                (a.shop, a.rating_count, a.valid_orders),
                (b.shop, b.rating_count, b.valid_orders)
            );
            assert_eq!(
                (&a.tier, a.low_days, a.score),
                (&b.tier, b.low_days, b.score),
                "{day}"
            );
            for (x, y) in [
                (a.described, b.described),
                (a.service, b.service),
                (a.described_vs, b.described_vs),
                (a.logistics_vs, b.logistics_vs),
                (a.raw, b.raw),
            ] {
                assert!(near(x, y), "{day} shop {}: {x:?} vs {y:?}", a.shop);
            }
            let (ma, mb): (serde_json::Value, serde_json::Value) = (
                serde_json::from_str(&a.metrics).unwrap(),
                serde_json::from_str(&b.metrics).unwrap(),
            );
            let (ma, mb) = (ma.as_object().unwrap(), mb.as_object().unwrap());
            assert_eq!(ma.keys().collect::<Vec<_>>(), mb.keys().collect::<Vec<_>>());
            for (name, fields) in ma {
                for (field, x) in fields.as_object().unwrap() {
                    let y = &mb[name][field];
                    assert!(
                        near(x.as_f64(), y.as_f64()),
                        "{day} shop {} {name}.{field}: {x} vs {y}",
                        a.shop
                    );
                }
            }
        }
    }
}
