//! Governance: violations and their points, penalty nodes (only the harshest applies), penalties
//! that set the shop's status and end by the job, appeals (deadline, one per violation,
//! revoking undoes exactly its own penalty and delistings), concurrent decisions, one audit row
//! per enforcement in the same transaction, and who may see what.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use crate::common::*;
use crate::orders::{merchant, product};
use haodian::accounts::{Role, SessionUser};
use haodian::db::schema::{
    audit_log, mail_outbox, penalties, products, shops, skus, violation_types, violations,
};
use haodian::governance::appeals::{self, Verdict};
use haodian::governance::violations::{self as gv, NewViolation};

fn tz() -> chrono_tz::Tz {
    "Asia/Shanghai".parse().unwrap()
}

fn shop_id(app: &TestApp, slug: &str) -> i64 {
    shops::table
        .filter(shops::slug.eq(slug))
        .select(shops::id)
        .first(&mut *app.conn())
        .unwrap()
}

fn shop_status(app: &TestApp, id: i64) -> (String, Option<NaiveDateTime>) {
    shops::table
        .find(id)
        .select((shops::status, shops::restricted_until))
        .first(&mut *app.conn())
        .unwrap()
}

fn type_id(app: &TestApp, code: &str) -> i64 {
    violation_types::table
        .filter(violation_types::code.eq(code))
        .filter(violation_types::active.eq(true))
        .select(violation_types::id)
        .first(&mut *app.conn())
        .unwrap()
}

fn product_of(app: &TestApp, sku: i64) -> i64 {
    skus::table
        .find(sku)
        .select(skus::product_id)
        .first(&mut *app.conn())
        .unwrap()
}

fn product_status(app: &TestApp, id: i64) -> String {
    products::table
        .find(id)
        .select(products::status)
        .first(&mut *app.conn())
        .unwrap()
}

fn audits(app: &TestApp, action: &str) -> i64 {
    audit_log::table
        .filter(audit_log::action.eq(action))
        .count()
        .get_result(&mut *app.conn())
        .unwrap()
}

fn moderator_user(app: &TestApp, handle: &str) -> SessionUser {
    app.user(handle, Role::Moderator);
    app.session_user(handle, vec![Role::Moderator])
}

/// A moderator records a violation of `code` over HTTP; returns the response.
async fn record(mo: &Client, slug: &str, code_id: i64, product: Option<i64>) -> Resp {
    let pid = product.map(|p| p.to_string()).unwrap_or_default();
    submit_multipart(
        mo,
        "/admin/violations/new",
        "/admin/violations",
        &[
            ("shop", slug),
            ("type_id", &code_id.to_string()),
            ("product_id", &pid),
            (
                "description",
                "巡检发现该店铺存在违规行为，证据见附件截图。",
            ),
        ],
        &[("photos", crate::flows::PNG)],
    )
    .await
}

fn last_violation(app: &TestApp) -> i64 {
    violations::table
        .select(violations::id)
        .order(violations::id.desc())
        .first(&mut *app.conn())
        .unwrap()
}

/// A moderator's violation of `code` recorded through the service inside `c`'s transaction.
fn record_in(
    c: &mut haodian::db::DbConn,
    shop: i64,
    kind: &haodian::governance::violations::ViolationType,
    actor: i64,
    at: NaiveDateTime,
) -> Result<gv::Recorded, haodian::error::AppError> {
    gv::record_in(
        c,
        &NewViolation {
            shop_id: shop,
            kind,
            product_id: None,
            order_id: None,
            description: "巡检记录",
            evidence: "",
            source: "moderator",
            actor: Some(actor),
        },
        tz(),
        at,
    )
}

/// Records a violation of `code` at `at` in its own transaction.
fn record_at(app: &TestApp, shop: i64, code: &str, actor: i64, at: NaiveDateTime) -> gv::Recorded {
    let k = gv::type_by_id(&mut app.conn(), type_id(app, code)).unwrap();
    let mut c = app.conn();
    haodian::db::write_tx(&mut c, |c| record_in(c, shop, &k, actor, at)).unwrap()
}

#[tokio::test]
async fn nodes_penalties_appeals_and_a_revocation_that_undoes_exactly_its_own_penalty() {
    let app = spawn_app();
    let m = merchant(&app, "gv_shop").await;
    let rival = merchant(&app, "gv_rival").await;
    let mo = app.logged_in("gv_mod", Role::Moderator).await;
    let p1 = product_of(
        &app,
        product(&app, &m, "纯棉T恤 白色", "", "59", 5).await[0],
    );
    let p2 = product_of(
        &app,
        product(&app, &m, "亚麻衬衫 蓝色", "", "129", 5).await[0],
    );
    let p3 = product_of(
        &app,
        product(&app, &m, "牛仔裤 直筒", "", "199", 5).await[0],
    );
    let shop = shop_id(&app, "gv-shop");
    for p in [p1, p2, p3] {
        assert_eq!(product_status(&app, p), "listed");
    }

    // Bad input is refused field by field and records nothing.
    let r = submit_multipart(
        &mo,
        "/admin/violations/new",
        "/admin/violations",
        &[
            ("shop", "no-such-shop"),
            ("type_id", "999999"),
            ("description", "短"),
        ],
        &[],
    )
    .await;
    r.assert_status(422);
    assert!(r.body.contains("field-error"));
    // Evidence is required for this type: no file, no record.
    let r = submit_multipart(
        &mo,
        "/admin/violations/new",
        "/admin/violations",
        &[
            ("shop", "gv-shop"),
            ("type_id", &type_id(&app, "prohibited_goods").to_string()),
            ("description", "巡检发现该店铺发布禁售商品。"),
        ],
        &[],
    )
    .await;
    r.assert_status(422);
    // A product of another shop cannot be named.
    let rival_product = product_of(
        &app,
        product(&app, &rival, "别家的裙子", "", "99", 5).await[0],
    );
    record(
        &mo,
        "gv-shop",
        type_id(&app, "prohibited_goods"),
        Some(rival_product),
    )
    .await
    .assert_status(422);
    let count: i64 = violations::table
        .count()
        .get_result(&mut *app.conn())
        .unwrap();
    assert_eq!(count, 0);

    // V1: prohibited goods (serious, 12, delists the product): reaches the 12-point node.
    record(&mo, "gv-shop", type_id(&app, "prohibited_goods"), Some(p1))
        .await
        .assert_status(303);
    let v1 = last_violation(&app);
    let (status, until) = shop_status(&app, shop);
    assert_eq!(status, "restricted");
    let days = (until.unwrap() - app.clock.now()).num_hours();
    assert!((7 * 24 - 1..=7 * 24).contains(&days), "{days}h");
    assert_eq!(product_status(&app, p1), "delisted");
    assert_eq!(product_status(&app, p2), "listed");
    let (subject, body) = app.last_mail("gv_shop@example.com").unwrap();
    assert!(subject.contains("违规通知"), "{subject}");
    assert!(body.contains("限制经营 7 天"), "{body}");
    assert_eq!(audits(&app, "violation.record"), 1);

    // V2: false advertising (general, 4, delists its product): no node on the general track.
    record(&mo, "gv-shop", type_id(&app, "false_advertising"), Some(p2))
        .await
        .assert_status(303);
    let v2 = last_violation(&app);
    assert_eq!(product_status(&app, p2), "delisted");
    let pens: i64 = penalties::table
        .filter(penalties::violation_id.eq(v2))
        .count()
        .get_result(&mut *app.conn())
        .unwrap();
    assert_eq!(pens, 0);

    // V3: order brushing (serious, 12): 12 -> 24, the 14-day node that delists everything.
    record(&mo, "gv-shop", type_id(&app, "order_brushing"), None)
        .await
        .assert_status(303);
    let v3 = last_violation(&app);
    let (status, until3) = shop_status(&app, shop);
    assert_eq!(status, "restricted");
    let hours = (until3.unwrap() - app.clock.now()).num_hours();
    assert!((14 * 24 - 1..=14 * 24).contains(&hours), "{hours}h");
    assert_eq!(product_status(&app, p3), "delisted");

    // The merchant sees all of it: points per track, the next node, deadlines.
    let page = m.get("/merchant/violations").await;
    page.assert_status(200);
    assert!(page.body.contains("严重违规（B）"));
    assert!(page.body.contains("达到 36 分"), "next node shown");
    assert!(page.body.contains("闭店 21 天"));
    assert!(page.body.contains("限制经营 14 天"));
    // Another shop sees none of it, and cannot open or appeal it.
    assert!(!rival
        .get("/merchant/violations")
        .await
        .body
        .contains("发布禁售商品"));
    rival
        .get(&format!("/merchant/violations/{v1}"))
        .await
        .assert_status(404);
    submit_multipart(
        &rival,
        "/merchant/violations",
        &format!("/merchant/violations/{v1}/appeal"),
        &[("body", "这不是我们的违规，但想试试能否申诉别家")],
        &[],
    )
    .await
    .assert_status(404);
    // The evidence is visible to the shop and moderators only.
    let evidence: String = violations::table
        .find(v1)
        .select(violations::evidence_media_ids)
        .first(&mut *app.conn())
        .unwrap();
    let ev = format!("/violations/{v1}/evidence/{evidence}");
    m.get(&ev).await.assert_status(200);
    mo.get(&ev).await.assert_status(200);
    rival.get(&ev).await.assert_status(404);

    // The merchant appeals V1; a short text is refused; a second appeal is a conflict.
    let one = format!("/merchant/violations/{v1}");
    let appeal = format!("{one}/appeal");
    submit_multipart(&m, &one, &appeal, &[("body", "冤枉")], &[])
        .await
        .assert_status(422);
    submit_multipart(
        &m,
        &one,
        &appeal,
        &[("body", "该商品为普通棉质T恤，并非禁售商品，附上质检报告。")],
        &[("photos", crate::flows::PNG)],
    )
    .await
    .assert_status(303);
    let r = submit_multipart(
        &m,
        &one,
        &appeal,
        &[("body", "再申诉一次看看会不会重复提交成功")],
        &[],
    )
    .await;
    r.assert_status(409);
    // The penalty stays in force during the appeal.
    assert_eq!(shop_status(&app, shop).0, "restricted");

    // The queue, ordered by deadline, shows it; the appeal page shows both sides and history.
    let q = mo.get("/admin/appeals").await;
    q.assert_status(200);
    assert!(q.body.contains("发布禁售商品"));
    let appeal_id: i64 = haodian::db::schema::appeals::table
        .select(haodian::db::schema::appeals::id)
        .first(&mut *app.conn())
        .unwrap();
    let ap = mo.get(&format!("/admin/appeals/{appeal_id}")).await;
    assert!(ap.body.contains("附上质检报告"));
    assert!(
        ap.body.contains("刷单炒信"),
        "the shop's history is on the page"
    );

    // The moderator revokes V1: its points are void, its 7-day restriction is undone and p1
    // is relisted; V3's 14-day restriction and V2's/V3's delistings stay.
    let r = mo
        .submit(
            &format!("/admin/appeals/{appeal_id}"),
            &format!("/admin/appeals/{appeal_id}/decide"),
            &[("verdict", "revoke"), ("reason", "质检报告证明商品合规")],
        )
        .await;
    r.assert_status(303);
    assert_eq!(product_status(&app, p1), "listed");
    assert_eq!(product_status(&app, p2), "delisted");
    assert_eq!(product_status(&app, p3), "delisted");
    assert_eq!(shop_status(&app, shop), ("restricted".into(), until3));
    let statuses: Vec<(Option<i64>, String)> = penalties::table
        .filter(penalties::shop_id.eq(shop))
        .order(penalties::id)
        .select((penalties::violation_id, penalties::status))
        .load(&mut *app.conn())
        .unwrap();
    assert_eq!(
        statuses,
        vec![(Some(v1), "revoked".into()), (Some(v3), "active".into())]
    );
    let year = haodian::governance::points::year_of(tz(), app.clock.now());
    let pts = gv::points_of(&mut app.conn(), shop, "serious", year).unwrap();
    assert_eq!(pts, 12);
    let (subject, _) = app.last_mail("gv_shop@example.com").unwrap();
    assert!(subject.contains("撤销违规"), "{subject}");
    assert_eq!(audits(&app, "appeal.revoke"), 1);
    // Deciding again is a clear conflict.
    mo.submit(
        &format!("/admin/appeals/{appeal_id}"),
        &format!("/admin/appeals/{appeal_id}/decide"),
        &[("verdict", "uphold"), ("reason", "再次处理看看")],
    )
    .await
    .assert_status(409);

    // The appeal window: 7 days after the notice.
    app.clock.advance(Duration::days(7) + Duration::hours(1));
    let page = m.get(&format!("/merchant/violations/{v3}")).await;
    assert!(page.body.contains("appeal-closed"));
    submit_multipart(
        &m,
        "/merchant/violations",
        &format!("/merchant/violations/{v3}/appeal"),
        &[("body", "逾期了但还是想申诉一下试试看")],
        &[],
    )
    .await
    .assert_status(409);
}

#[test]
fn penalties_end_by_the_job_and_a_closure_gives_way_to_the_restriction_left() {
    let app = spawn_app();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        merchant(&app, "gj_shop").await;
    });
    let shop = shop_id(&app, "gj-shop");
    let mo = moderator_user(&app, "gj_mod");
    let now = app.clock.now();
    let record = |code: &str, at: NaiveDateTime| record_at(&app, shop, code, mo.id, at);
    // 24 serious points at once: the 14-day restriction (crossing 12 and 24, harshest only).
    let r = record("counterfeit", now);
    assert_eq!(r.penalty, Some(("restrict".into(), 14)));
    // 12 more a day later: the 21-day closure; the status is the harshest in force.
    let r = record("order_brushing", now + Duration::days(1));
    assert_eq!(r.penalty, Some(("close".into(), 21)));
    assert_eq!(shop_status(&app, shop).0, "suspended");

    // Nothing is due yet.
    assert_eq!(
        gv::lift_expired(&mut app.conn(), now + Duration::days(2), 100).unwrap(),
        0
    );
    // After 14 days the restriction ends, but the closure holds the shop.
    let n = gv::lift_expired(&mut app.conn(), now + Duration::days(15), 100).unwrap();
    assert_eq!(n, 1);
    assert_eq!(shop_status(&app, shop).0, "suspended");
    // After 22 days the closure ends too: active again, one audit row per ended penalty, and
    // running the job again changes nothing.
    let n = gv::lift_expired(&mut app.conn(), now + Duration::days(23), 100).unwrap();
    assert_eq!(n, 1);
    assert_eq!(shop_status(&app, shop), ("active".into(), None));
    assert_eq!(audits(&app, "shop.penalty_ended"), 2);
    assert_eq!(
        gv::lift_expired(&mut app.conn(), now + Duration::days(30), 100).unwrap(),
        0
    );
    assert_eq!(audits(&app, "shop.penalty_ended"), 2);
    let ended: i64 = mail_outbox::table
        .filter(mail_outbox::kind.eq("penalty_ended"))
        .count()
        .get_result(&mut *app.conn())
        .unwrap();
    assert_eq!(ended, 2);

    // 12 more reaches 48: clearance, which no job lifts.
    let r = record("order_brushing", now + Duration::days(24));
    assert_eq!(r.penalty, Some(("clear".into(), 0)));
    assert_eq!(shop_status(&app, shop).0, "cleared");
    gv::lift_expired(&mut app.conn(), now + Duration::days(400), 100).unwrap();
    assert_eq!(shop_status(&app, shop).0, "cleared");
}

#[test]
fn points_reset_with_the_platform_year_and_the_tracks_stay_apart() {
    let app = spawn_app();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        merchant(&app, "gy_shop").await;
    });
    let shop = shop_id(&app, "gy-shop");
    let mo = moderator_user(&app, "gy_mod");
    let at = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap();
    let record = |code: &str, when: NaiveDateTime| record_at(&app, shop, code, mo.id, when);
    // 31 Dec 2026, 22:00 and 23:00 in Shanghai: 6 + 6 general points reach 12.
    assert_eq!(
        record("abusive_service", at("2026-12-31 14:00:00")).penalty,
        None
    );
    let r = record("abusive_service", at("2026-12-31 15:00:00"));
    assert_eq!(r.points_after, 12);
    assert_eq!(r.penalty, Some(("restrict".into(), 7)));
    // Serious points are apart: 12 serious points after 12 general reach the serious node.
    let r = record("off_platform_trading", at("2026-12-31 15:30:00"));
    assert_eq!(r.points_after, 12);
    // 1 Jan 2027 00:30 in Shanghai: the general track starts from zero again.
    let r = record("abusive_service", at("2026-12-31 16:30:00"));
    assert_eq!(r.points_after, 6);
    assert_eq!(r.penalty, None);
    let mut c = app.conn();
    assert_eq!(gv::points_of(&mut c, shop, "general", 2026).unwrap(), 12);
    assert_eq!(gv::points_of(&mut c, shop, "general", 2027).unwrap(), 6);
    assert_eq!(gv::points_of(&mut c, shop, "serious", 2027).unwrap(), 0);
    // The records stay.
    let n: i64 = violations::table
        .filter(violations::shop_id.eq(shop))
        .count()
        .get_result(&mut *c)
        .unwrap();
    assert_eq!(n, 4);
}

#[test]
fn an_enforcement_rolled_back_leaves_no_audit_row_and_no_change() {
    let app = spawn_app();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        merchant(&app, "gr_shop").await;
    });
    let shop = shop_id(&app, "gr-shop");
    let mo = moderator_user(&app, "gr_mod");
    let k = gv::type_by_id(&mut app.conn(), type_id(&app, "counterfeit")).unwrap();
    let before_audit: i64 = audit_log::table
        .count()
        .get_result(&mut *app.conn())
        .unwrap();
    let mut c = app.conn();
    let r: Result<(), haodian::error::AppError> = haodian::db::write_tx(&mut c, |c| {
        record_in(c, shop, &k, mo.id, app.clock.now())?;
        // Whatever fails after the enforcement in the same transaction undoes all of it.
        Err(haodian::error::AppError::Conflict("test.rollback"))
    });
    assert!(r.is_err());
    drop(c);
    let after_audit: i64 = audit_log::table
        .count()
        .get_result(&mut *app.conn())
        .unwrap();
    assert_eq!(after_audit, before_audit);
    assert_eq!(shop_status(&app, shop), ("active".into(), None));
    let n: i64 = penalties::table
        .count()
        .get_result(&mut *app.conn())
        .unwrap();
    assert_eq!(n, 0);

    // Done for real: exactly one audit row for the violation and its penalty.
    record_at(&app, shop, "counterfeit", mo.id, app.clock.now());
    let after: i64 = audit_log::table
        .count()
        .get_result(&mut *app.conn())
        .unwrap();
    assert_eq!(after, before_audit + 1);
}

#[tokio::test]
async fn two_moderators_deciding_one_appeal_at_once_one_wins_the_other_gets_a_conflict() {
    let app = spawn_app();
    let m = merchant(&app, "gc_shop").await;
    let mo1 = app.logged_in("gc_mod1", Role::Moderator).await;
    let mo2 = app.logged_in("gc_mod2", Role::Moderator).await;
    record(&mo1, "gc-shop", type_id(&app, "order_brushing"), None)
        .await
        .assert_status(303);
    let v = last_violation(&app);
    let one = format!("/merchant/violations/{v}");
    submit_multipart(
        &m,
        &one,
        &format!("{one}/appeal"),
        &[("body", "我们没有刷单，所有订单都有真实物流记录。")],
        &[],
    )
    .await
    .assert_status(303);
    let id: i64 = haodian::db::schema::appeals::table
        .select(haodian::db::schema::appeals::id)
        .first(&mut *app.conn())
        .unwrap();
    let action = format!("/admin/appeals/{id}/decide");
    let (t1, t2) = (mo1.csrf().await, mo2.csrf().await);
    let f1 = [
        ("csrf_token", t1.as_str()),
        ("verdict", "revoke"),
        ("reason", "已核实无误"),
    ];
    let f2 = [
        ("csrf_token", t2.as_str()),
        ("verdict", "uphold"),
        ("reason", "已核实无误"),
    ];
    let (a, b) = tokio::join!(mo1.post(&action, &f1), mo2.post(&action, &f2));
    let mut codes = [a.status, b.status];
    codes.sort();
    assert_eq!(codes, [303, 409], "one wins, the other is told");
    let decided = audits(&app, "appeal.revoke") + audits(&app, "appeal.uphold");
    assert_eq!(decided, 1);
    // The service says the same to a third try.
    let mo = moderator_user(&app, "gc_mod3");
    let r = appeals::decide(
        &mut app.conn(),
        &mo,
        id,
        Verdict::Uphold,
        "第三次处理",
        tz(),
        app.clock.now(),
    );
    assert!(matches!(
        r,
        Err(haodian::error::AppError::Conflict("appeal.already_decided"))
    ));
}

#[tokio::test]
async fn the_console_shop_record_audit_log_suspension_and_clearance_by_admins_only() {
    let app = spawn_app();
    let m = merchant(&app, "ga_shop").await;
    let p = product_of(&app, product(&app, &m, "羊毛围巾", "", "89", 5).await[0]);
    let mo = app.logged_in("ga_mod", Role::Moderator).await;
    let admin = app.logged_in("ga_admin", Role::Admin).await;
    let shop = shop_id(&app, "ga-shop");
    record(&mo, "ga-shop", type_id(&app, "order_brushing"), None)
        .await
        .assert_status(303);
    let (_, until) = shop_status(&app, shop);

    // The overview counts today's enforcement.
    let o = mo.get("/admin").await;
    assert!(o.body.contains("id=\"ov-violations\">1<"), "{}", o.body);

    // One shop's whole record.
    let rec = mo.get(&format!("/admin/shops/{shop}")).await;
    rec.assert_status(200);
    assert!(rec.body.contains("刷单炒信"));
    assert!(rec.body.contains("限制经营 7 天"));
    assert!(rec.body.contains("violation.record"));
    // A moderator sees no clearance button; an admin does.
    assert!(!rec.body.contains("/clear\""));
    assert!(admin
        .get(&format!("/admin/shops/{shop}"))
        .await
        .body
        .contains(&format!("/admin/shops/{shop}/clear")));

    // Suspension by hand sits on top of the restriction; lifting it leaves the restriction.
    let page = format!("/admin/shops/{shop}");
    mo.submit(
        &page,
        &format!("{page}/suspend"),
        &[("reason", "涉嫌售假，待核查")],
    )
    .await
    .assert_status(303);
    assert_eq!(shop_status(&app, shop), ("suspended".into(), None));
    mo.submit(
        &page,
        &format!("{page}/suspend"),
        &[("reason", "再次暂停看看")],
    )
    .await
    .assert_status(409);
    mo.submit(
        &page,
        &format!("{page}/reinstate"),
        &[("reason", "核查完毕，无售假")],
    )
    .await
    .assert_status(303);
    assert_eq!(shop_status(&app, shop), ("restricted".into(), until));

    // The audit log: filters by action prefix, actor, shop and date; CSV export.
    let log = mo.get("/admin/audit?action=violation.").await;
    assert!(log.body.contains("violation.record"));
    assert!(!log.body.contains("shop.suspend"));
    let log = mo.get("/admin/audit?actor=ga_mod&shop=ga-shop").await;
    assert!(log.body.contains("shop.suspend") && log.body.contains("shop.reinstate"));
    let log = mo.get("/admin/audit?actor=nobody_at_all").await;
    assert!(log.body.contains("audit-empty"));
    let log = mo.get("/admin/audit?shop=ga-shop&from=2099-01-01").await;
    assert!(log.body.contains("audit-empty"));
    let csv = mo.get("/admin/audit.csv?shop=ga-shop").await;
    csv.assert_status(200);
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(
        lines[0],
        "id,time,actor,action,subject_type,subject_id,shop,detail"
    );
    assert_eq!(lines.len(), 4, "{}", csv.body);
    assert!(lines[1].contains("shop.reinstate") && lines[1].contains("ga_mod"));
    assert!(lines[3].contains("violation.record") && lines[3].contains("ga-shop"));

    // Clearing by hand: moderators may not; an admin must type the shop's address.
    mo.submit(
        &page,
        &format!("{page}/clear"),
        &[("confirm", "ga-shop"), ("reason", "多次严重违规")],
    )
    .await
    .assert_status(403);
    let r = admin
        .submit(
            &page,
            &format!("{page}/clear"),
            &[("confirm", "wrong"), ("reason", "多次严重违规")],
        )
        .await;
    r.assert_status(303);
    assert_eq!(shop_status(&app, shop).0, "restricted");
    admin
        .submit(
            &page,
            &format!("{page}/clear"),
            &[("confirm", "ga-shop"), ("reason", "多次严重违规")],
        )
        .await
        .assert_status(303);
    assert_eq!(shop_status(&app, shop).0, "cleared");
    assert_eq!(product_status(&app, p), "delisted");
    assert_eq!(audits(&app, "shop.clear"), 1);
    admin
        .submit(
            &page,
            &format!("{page}/clear"),
            &[("confirm", "ga-shop"), ("reason", "再清退一次")],
        )
        .await
        .assert_status(409);
    assert_eq!(audits(&app, "shop.clear"), 1);
}

#[tokio::test]
async fn admins_edit_the_rules_as_new_versions_that_apply_at_once_with_a_diff_in_the_audit_log() {
    use haodian::db::schema::{rule_sets, score_rules};
    let app = spawn_app();
    merchant(&app, "ge_shop").await;
    let admin = app.logged_in("ge_admin", Role::Admin).await;
    let mo = app.logged_in("ge_mod", Role::Moderator).await;
    mo.get("/admin/rules").await.assert_status(403);
    mo.submit(
        "/admin",
        "/admin/rules/terms",
        &[
            ("term", "神器"),
            ("match_type", "substring"),
            ("scope", "all"),
            ("severity", "block"),
            ("legal_basis", "平台规则"),
        ],
    )
    .await
    .assert_status(403);
    let versions = |app: &TestApp| -> i64 {
        rule_sets::table
            .count()
            .get_result(&mut *app.conn())
            .unwrap()
    };
    let v0 = versions(&app);

    // "Test this text" previews what the current rules flag.
    let page = admin
        .get("/admin/rules?text=%E5%85%A8%E7%BD%91%E6%9C%80%E4%BD%B3%E5%8F%A3%E6%84%9F")
        .await;
    page.assert_status(200);
    assert!(page.body.contains("<strong>最佳</strong>"), "{}", page.body);
    let clean = admin
        .get("/admin/rules?text=%E9%99%8D%E5%99%AA%E7%A5%9E%E5%99%A8")
        .await;
    assert!(clean.body.contains("id=\"test-result\" class=\"muted\""));

    // A bad regular expression is refused and changes nothing.
    let r = admin
        .submit(
            "/admin/rules",
            "/admin/rules/terms",
            &[
                ("term", "(未闭合"),
                ("match_type", "regex"),
                ("scope", "all"),
                ("severity", "block"),
                ("legal_basis", "平台规则"),
            ],
        )
        .await;
    r.assert_status(422);
    assert!(r.body.contains("正则表达式无效"));
    assert_eq!(versions(&app), v0);

    // Adding a term: a new version, in force at once, audited with the diff.
    admin
        .submit(
            "/admin/rules",
            "/admin/rules/terms",
            &[
                ("term", "神器"),
                ("match_type", "substring"),
                ("scope", "all"),
                ("severity", "block"),
                ("legal_basis", "平台规则：夸大宣传"),
            ],
        )
        .await
        .assert_status(303);
    assert_eq!(versions(&app), v0 + 1);
    let flagged = admin
        .get("/admin/rules?text=%E9%99%8D%E5%99%AA%E7%A5%9E%E5%99%A8")
        .await;
    assert!(flagged.body.contains("<strong>神器</strong>"));
    let (detail,): (String,) = audit_log::table
        .filter(audit_log::action.eq("rules.change"))
        .select((audit_log::detail,))
        .first(&mut *app.conn())
        .unwrap();
    assert!(
        detail.contains("+ [terms] 神器 | substring | all | block"),
        "{detail}"
    );

    // A new version of a violation type: old violations keep theirs, new ones use the new.
    admin
        .submit(
            "/admin/rules",
            "/admin/rules/types",
            &[
                ("code", "order_brushing"),
                ("name_zh", "刷单炒信"),
                ("name_en", "Order brushing"),
                ("track", "serious"),
                ("points", "6"),
                ("evidence_required", "1"),
            ],
        )
        .await
        .assert_status(303);
    let active: Vec<(i64, i64)> = violation_types::table
        .filter(violation_types::code.eq("order_brushing"))
        .filter(violation_types::active.eq(true))
        .select((violation_types::version, violation_types::points))
        .load(&mut *app.conn())
        .unwrap();
    assert_eq!(active, vec![(2, 6)]);

    // A penalty node and a parameter: the next deduction uses them.
    admin
        .submit(
            "/admin/rules",
            "/admin/rules/nodes",
            &[
                ("track", "serious"),
                ("threshold", "6"),
                ("action", "restrict"),
                ("days", "3"),
            ],
        )
        .await
        .assert_status(303);
    admin
        .submit(
            "/admin/rules",
            "/admin/rules/params",
            &[("key", "appeal_days"), ("value", "3")],
        )
        .await
        .assert_status(303);
    admin
        .submit(
            "/admin/rules",
            "/admin/rules/params",
            &[("key", "appeal_days"), ("value", "0")],
        )
        .await
        .assert_status(422);
    record(&mo, "ge-shop", type_id(&app, "order_brushing"), None)
        .await
        .assert_status(303);
    let v = last_violation(&app);
    let (points, deadline, created): (i64, NaiveDateTime, NaiveDateTime) = violations::table
        .find(v)
        .select((
            violations::points,
            violations::appeal_deadline,
            violations::created_at,
        ))
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!(points, 6);
    assert_eq!(deadline - created, Duration::days(3));
    let (status, until) = shop_status(&app, shop_id(&app, "ge-shop"));
    assert_eq!(status, "restricted");
    assert_eq!(until.unwrap() - created, Duration::days(3));

    // Score thresholds: invalid JSON changes nothing; a valid document is a new version.
    let before: i64 = score_rules::table
        .count()
        .get_result(&mut *app.conn())
        .unwrap();
    admin
        .submit(
            "/admin/rules",
            "/admin/rules/score",
            &[("score", "{not json")],
        )
        .await
        .assert_status(422);
    let mut rules = haodian::dsr::rules::ScoreRules::default_set();
    rules.clearance_days = 5;
    let json = serde_json::to_string(&rules).unwrap();
    admin
        .submit("/admin/rules", "/admin/rules/score", &[("score", &json)])
        .await
        .assert_status(303);
    let after: i64 = score_rules::table
        .count()
        .get_result(&mut *app.conn())
        .unwrap();
    assert_eq!(after, before + 1);
    let (_, current) = haodian::dsr::rules::current(&mut app.conn()).unwrap();
    assert_eq!(current.clearance_days, 5);

    // Old versions stay readable: the seeded one now shows its content, each later one its diff.
    let first: i64 = rule_sets::table
        .select(rule_sets::id)
        .order(rule_sets::id)
        .first(&mut *app.conn())
        .unwrap();
    let v1 = admin.get(&format!("/admin/rules/versions/{first}")).await;
    assert!(v1.body.contains("最佳 | substring | all | block"));
    assert!(!v1.body.contains("神器"));
    let list = admin.get("/admin/rules/versions").await;
    assert!(list.body.contains("+ [violation_types] order_brushing v2"));
    assert!(list.body.contains("- [violation_types] order_brushing v1"));
    assert!(list.body.contains("clearance_days = 5"));

    // Removing a term is a version too, and the text test follows at once.
    let term: i64 = haodian::db::schema::prohibited_terms::table
        .filter(haodian::db::schema::prohibited_terms::term.eq("神器"))
        .select(haodian::db::schema::prohibited_terms::id)
        .first(&mut *app.conn())
        .unwrap();
    let n = versions(&app);
    let remove = format!("/admin/rules/terms/{term}/delete");
    admin
        .submit("/admin/rules", &remove, &[])
        .await
        .assert_status(303);
    assert_eq!(versions(&app), n + 1);
    let clean = admin
        .get("/admin/rules?text=%E9%99%8D%E5%99%AA%E7%A5%9E%E5%99%A8")
        .await;
    assert!(clean.body.contains("id=\"test-result\" class=\"muted\""));
    // Gone already: removing it again is "not found" and makes no version.
    admin
        .submit("/admin/rules", &remove, &[])
        .await
        .assert_status(404);
    assert_eq!(versions(&app), n + 1);
}

#[tokio::test]
async fn a_rescan_after_a_rule_update_records_automatic_violations_once() {
    let app = spawn_app();
    let m = merchant(&app, "gs_shop").await;
    let admin = app.logged_in("gs_admin", Role::Admin).await;
    let clean = product_of(&app, product(&app, &m, "纯棉T恤", "", "59", 5).await[0]);
    let gadget = product_of(
        &app,
        product(&app, &m, "降噪神器耳机", "", "199", 5).await[0],
    );
    let king = product_of(
        &app,
        product(&app, &m, "舒适王者拖鞋", "", "39", 5).await[0],
    );
    for p in [clean, gadget, king] {
        assert_eq!(product_status(&app, p), "listed");
    }
    for (term, severity) in [("神器", "block"), ("王者", "review")] {
        admin
            .submit(
                "/admin/rules",
                "/admin/rules/terms",
                &[
                    ("term", term),
                    ("match_type", "substring"),
                    ("scope", "all"),
                    ("severity", severity),
                    ("legal_basis", "平台规则：夸大宣传"),
                ],
            )
            .await
            .assert_status(303);
    }
    // The command, as an operator runs it after the update.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_haodian"))
        .args(["governance", "rescan"])
        .env("DATABASE_URL", &app.db.url)
        .env("MAIL_URL", "log")
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("checked 3 listed products, 1 violations recorded, 1 sent to review"),
        "{stdout}"
    );
    assert_eq!(product_status(&app, clean), "listed");
    assert_eq!(product_status(&app, gadget), "delisted");
    assert_eq!(product_status(&app, king), "pending_review");
    let (source, points, description): (String, i64, String) = violations::table
        .select((
            violations::source,
            violations::points,
            violations::description,
        ))
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!((source.as_str(), points), ("rescan", 2));
    assert!(description.contains("神器"), "{description}");
    assert_eq!(audits(&app, "violation.auto"), 1);
    assert_eq!(audits(&app, "product.rescan_review"), 1);
    let (subject, _) = app.last_mail("gs_shop@example.com").unwrap();
    assert!(subject.contains("使用违禁词"), "{subject}");
    // The merchant sees the automatic violation and may appeal it.
    let page = m.get("/merchant/violations").await;
    assert!(page.body.contains("使用违禁词"));

    // A second run finds nothing new.
    let r = haodian::governance::rescan::run(&mut app.conn(), tz(), app.clock.now(), 2).unwrap();
    assert_eq!((r.checked, r.violations, r.to_review), (1, 0, 0));
    assert_eq!(audits(&app, "violation.auto"), 1);
}
