//! Ratings over HTTP: only the buyer of a completed order rates it, once, within the window;
//! bad input changes nothing; the product page shows it with its histogram; the shop replies
//! once and no other shop can; the nightly scores reach the storefront; the authorized-account
//! rule follows the score.

use chrono::Duration;
use diesel::prelude::*;
use haodian::accounts::Role;
use haodian::db::schema::{dsr_snapshots as snap, rating_products, ratings, shops};

use crate::common::{spawn_app, spawn_app_with, submit_multipart, Client, TestApp};
use crate::orders::{merchant, paid_order, product};

fn count_ratings(app: &TestApp) -> i64 {
    ratings::table.count().get_result(&mut *app.conn()).unwrap()
}

/// Ships the order and lets the buyer confirm it: it is completed.
async fn complete(m: &Client, b: &Client, no: &str) {
    m.submit(
        &format!("/merchant/orders/{no}"),
        &format!("/merchant/orders/{no}/ship"),
        &[("carrier", "sf"), ("tracking_no", "SF1234567890")],
    )
    .await
    .assert_status(303);
    b.submit(
        &format!("/orders/{no}"),
        &format!("/orders/{no}/confirm"),
        &[],
    )
    .await
    .assert_status(303);
}

async fn rate(b: &Client, no: &str, stars: [&str; 3], body: &str) -> crate::common::Resp {
    let page = format!("/orders/{no}/rate");
    submit_multipart(
        b,
        &page,
        &page,
        &[
            ("described", stars[0]),
            ("service", stars[1]),
            ("logistics", stars[2]),
            ("body", body),
        ],
        &[],
    )
    .await
}

#[tokio::test]
async fn a_completed_order_is_rated_once_and_shows_on_the_product_page() {
    let app = spawn_app();
    let m = merchant(&app, "rt_shop").await;
    let sku = product(&app, &m, "真丝睡衣", "", "299", 5).await[0];
    let pid: i64 = haodian::db::schema::skus::table
        .find(sku)
        .select(haodian::db::schema::skus::product_id)
        .first(&mut *app.conn())
        .unwrap();
    // Viewed before any rating (the server keeps product pages' ratings for a while; a new
    // rating must show at once all the same).
    let before = app.client().get(&format!("/products/{pid}")).await;
    assert!(before.body.contains("暂无评价"));
    let (b, no) = paid_order(&app, "rtb", sku, 1).await;

    // Not completed yet: the page says so and a post is refused.
    let page = b.get(&format!("/orders/{no}/rate")).await;
    page.assert_status(200);
    assert!(page.body.contains("订单完成后才能评价"));
    rate(&b, &no, ["5", "5", "5"], "").await.assert_status(409);
    complete(&m, &b, &no).await;
    assert!(b
        .get(&format!("/orders/{no}"))
        .await
        .body
        .contains("id=\"rate-order\""));

    // Bad input: a message, nothing written.
    let r = rate(&b, &no, ["6", "0", "x"], "").await;
    r.assert_status(422);
    assert!(r.body.contains("请给出 1 到 5 星"));
    let long = "长".repeat(501);
    rate(&b, &no, ["5", "5", "5"], &long)
        .await
        .assert_status(422);
    assert_eq!(count_ratings(&app), 0);

    // Someone else's order: not found.
    let stranger = crate::orders::buyers(&app, "rtx", 1).await.remove(0);
    rate(&stranger, &no, ["1", "1", "1"], "")
        .await
        .assert_status(404);
    assert_eq!(
        stranger.get(&format!("/orders/{no}/rate")).await.status,
        404
    );

    let r = rate(&b, &no, ["4", "5", "3"], "面料很舒服，<b>推荐</b>").await;
    r.assert_status(303);
    let page = b.get(&format!("/orders/{no}/rate")).await;
    assert!(page.body.contains("id=\"my-rating\""));
    // Once only.
    let r = rate(&b, &no, ["1", "1", "1"], "改成差评").await;
    r.assert_status(409);
    assert!(r.body.contains("已评价"));
    assert_eq!(count_ratings(&app), 1);
    let (d, s, l): (i64, i64, i64) = ratings::table
        .select((ratings::described, ratings::service, ratings::logistics))
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!((d, s, l), (4, 5, 3));
    assert_eq!(
        rating_products::table
            .count()
            .get_result::<i64>(&mut *app.conn())
            .unwrap(),
        1
    );

    // The product page: the rating (escaped), the buyer masked, the histogram.
    let p = app.client().get(&format!("/products/{pid}")).await;
    p.assert_status(200);
    let at = p
        .body
        .find("面料很舒服")
        .expect("the rating is on the product page");
    assert!(
        p.body.contains("面料很舒服，&#60;b&#62;推荐"),
        "{}",
        &p.body[at..at + 80]
    );
    assert!(!p.body.contains("<b>推荐"));
    assert!(p.body.contains("1 条评价"));
    assert!(p
        .body
        .contains("<progress class=\"hist-bar\" max=\"100\" value=\"100\">"));
    assert!(!p.body.contains("rtb_0"), "the buyer's handle is masked");
    // The ratings are shown once, in the page and not in its <title>.
    assert_eq!(p.body.matches("面料很舒服").count(), 1);
    let title = &p.body[p.body.find("<title>").unwrap() + 7..p.body.find("</title>").unwrap()];
    assert!(!title.contains('<'), "{title}");
}

#[tokio::test]
async fn the_window_closes_after_fifteen_days() {
    let app = spawn_app();
    let m = merchant(&app, "rw_shop").await;
    let sku = product(&app, &m, "羊毛围巾", "", "159", 5).await[0];
    let (b, no) = paid_order(&app, "rwb", sku, 1).await;
    complete(&m, &b, &no).await;
    app.clock.advance(Duration::days(15) + Duration::hours(1));
    let r = rate(&b, &no, ["5", "5", "5"], "").await;
    r.assert_status(409);
    assert!(r.body.contains("已超过评价期限"));
    assert_eq!(count_ratings(&app), 0);
}

#[tokio::test]
async fn the_shop_replies_once_and_no_other_shop_can() {
    let app = spawn_app();
    let m = merchant(&app, "rr_shop").await;
    let rival = merchant(&app, "rr_rival").await;
    let sku = product(&app, &m, "帆布托特包 大容量", "", "89", 5).await[0];
    let (b, no) = paid_order(&app, "rrb", sku, 1).await;
    complete(&m, &b, &no).await;
    rate(&b, &no, ["2", "3", "4"], "做工一般")
        .await
        .assert_status(303);
    let id: i64 = ratings::table
        .select(ratings::id)
        .first(&mut *app.conn())
        .unwrap();
    let list = m.get("/merchant/ratings?unreplied=1").await;
    list.assert_status(200);
    assert!(list.body.contains("做工一般"));
    assert!(!rival
        .get("/merchant/ratings")
        .await
        .body
        .contains("做工一般"));
    let pid: i64 = haodian::db::schema::skus::table
        .find(sku)
        .select(haodian::db::schema::skus::product_id)
        .first(&mut *app.conn())
        .unwrap();
    let product_page = format!("/products/{pid}");
    let before = app.client().get(&product_page).await;
    assert!(before.body.contains("做工一般") && !before.body.contains("补发配件"));
    let action = format!("/merchant/ratings/{id}/reply");
    // Another shop: not found, nothing written.
    rival
        .submit("/merchant/ratings", &action, &[("reply", "抢着回复")])
        .await
        .assert_status(404);
    m.submit("/merchant/ratings", &action, &[("reply", "x")])
        .await
        .assert_status(422);
    m.submit(
        "/merchant/ratings",
        &action,
        &[("reply", "抱歉，已为您补发配件")],
    )
    .await
    .assert_status(303);
    m.submit("/merchant/ratings", &action, &[("reply", "再回复一次")])
        .await
        .assert_status(409);
    let reply: String = ratings::table
        .find(id)
        .select(ratings::reply)
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!(reply, "抱歉，已为您补发配件");
    // Buyers see the reply under the rating at once.
    let after = app.client().get(&product_page).await;
    assert!(after.body.contains("抱歉，已为您补发配件"));
    assert!(!m
        .get("/merchant/ratings?unreplied=1")
        .await
        .body
        .contains("做工一般"));
}

#[tokio::test]
async fn scores_reach_the_storefront_and_gate_authorized_accounts() {
    // Followers are not what this test is about.
    let app = spawn_app_with(|s| s.authorized_min_followers = 0);
    let m = merchant(&app, "sc_shop").await;
    let sku = product(&app, &m, "纯棉T恤", "", "59", 5).await[0];
    let (b, no) = paid_order(&app, "scb", sku, 1).await;
    complete(&m, &b, &no).await;
    rate(&b, &no, ["5", "4", "4"], "").await.assert_status(303);
    let shop_id: i64 = shops::table
        .filter(shops::slug.eq("sc-shop"))
        .select(shops::id)
        .first(&mut *app.conn())
        .unwrap();
    let before = app.client().get("/shops/sc-shop").await;
    assert!(before.body.contains("id=\"dsr-badge\""));
    assert!(
        !before.body.contains("<dt>描述相符</dt>"),
        "no score before the job"
    );

    // Score today's platform day (the job's own entry point, as `haodian dsr score` runs it).
    let settings = crate::common::test_settings(&app.db);
    let now = app.clock.now() + Duration::days(1);
    let day = haodian::dsr::job::platform_day(settings.tz, app.clock.now());
    let out = haodian::dsr::job::run(&mut app.conn(), &settings, day, "test", now).unwrap();
    assert!(matches!(out, haodian::dsr::job::RunOutcome::Scored(_)));
    let s = app.client().get("/shops/sc-shop").await;
    assert!(
        s.body.contains("<dt>描述相符</dt><dd><strong>5.0</strong>"),
        "DSR shown"
    );
    assert!(
        s.body.contains("数据不足"),
        "one order: not enough data for a score"
    );
    let merchant_page = m.get("/merchant/dsr").await;
    merchant_page.assert_status(200);
    assert!(merchant_page.body.contains("5.0"));

    // Authorized accounts: a shop scored below the bar (4.0) can not add one.
    app.logged_in("sc_creator", Role::Creator).await;
    app.logged_in("sc_creator2", Role::Creator).await;
    let set_score = |v: f64| {
        diesel::update(snap::table.filter(snap::shop_id.eq(shop_id)))
            .set(snap::score.eq(Some(v)))
            .execute(&mut *app.conn())
            .unwrap();
    };
    set_score(3.9);
    let authorize = |handle: &'static str| {
        let m = &m;
        async move {
            m.submit(
                "/merchant/authorizations",
                "/merchant/authorizations",
                &[("handle", handle)],
            )
            .await
        }
    };
    let r = authorize("sc_creator").await;
    r.assert_status(409);
    assert!(r.body.contains("体验分低于"), "{}", r.body);
    set_score(4.0);
    authorize("sc_creator2").await.assert_status(303);
}
