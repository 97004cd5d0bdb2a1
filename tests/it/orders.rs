//! Orders: cart to completion over HTTP, checkout that never oversells under concurrency,
//! idempotency keys, the order state machine (legal and illegal transitions, and a property
//! test of random event sequences), the timeout jobs, and the cross-account (IDOR) cases.

use std::collections::HashMap;

use crate::common::*;
use diesel::prelude::*;
use haodian::accounts::Role;
use haodian::db::schema::{
    app_secrets, checkouts, mail_outbox, order_lines, orders, payments, skus, users,
};
use haodian::orders::payment::{sign, sign_delivery};
use haodian::orders::service as svc;

fn category_id(app: &TestApp, slug: &str) -> String {
    use haodian::db::schema::categories;
    categories::table
        .filter(categories::slug.eq(slug))
        .select(categories::id)
        .first::<i64>(&mut *app.conn())
        .unwrap()
        .to_string()
}

/// A logged-in owner of a fresh apparel shop.
pub async fn merchant(app: &TestApp, handle: &str) -> Client {
    let c = app.logged_in(handle, Role::Buyer).await;
    let cat = category_id(app, "apparel");
    submit_multipart(
        &c,
        "/",
        "/merchant/shop/open",
        &[
            ("name", &format!("{handle} 的店")),
            ("slug", &handle.replace('_', "-")),
            ("main_category_id", &cat),
            ("entity_type", "individual"),
        ],
        &[],
    )
    .await
    .assert_status(303);
    c
}

/// Lists a product of the merchant with the given variants (`颜色: 红, 蓝`, or empty for one
/// SKU), every SKU at `price` yuan with `stock`; returns the SKU ids in grid order.
pub async fn product(
    app: &TestApp,
    m: &Client,
    title: &str,
    variants: &str,
    price: &str,
    stock: i64,
) -> Vec<i64> {
    let cat = category_id(app, "apparel");
    let r = m
        .submit(
            "/merchant/products/new",
            "/merchant/products/new",
            &[("title", title), ("category_id", &cat)],
        )
        .await;
    r.assert_status(303);
    let id: i64 = r
        .location()
        .trim_start_matches("/merchant/products/")
        .parse()
        .unwrap();
    let page = format!("/merchant/products/{id}");
    if !variants.is_empty() {
        m.submit(
            &page,
            &format!("/merchant/products/{id}/variants"),
            &[("variants", variants)],
        )
        .await
        .assert_status(303);
    }
    let ids: Vec<i64> = skus::table
        .filter(skus::product_id.eq(id))
        .order(skus::position)
        .select(skus::id)
        .load(&mut *app.conn())
        .unwrap();
    let mut fields: Vec<(String, String)> = Vec::new();
    for (i, s) in ids.iter().enumerate() {
        fields.push((format!("sku_{s}_code"), format!("P{id}-{i}")));
        fields.push((format!("sku_{s}_price"), price.into()));
        fields.push((format!("sku_{s}_list_price"), String::new()));
        fields.push((format!("sku_{s}_stock"), stock.to_string()));
    }
    let refs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    m.submit(&page, &format!("/merchant/products/{id}/skus"), &refs)
        .await
        .assert_status(303);
    m.submit(&page, &format!("/merchant/products/{id}/submit"), &[])
        .await
        .assert_status(303);
    ids
}

pub fn stock(app: &TestApp, sku: i64) -> i64 {
    skus::table
        .find(sku)
        .select(skus::stock)
        .first(&mut *app.conn())
        .unwrap()
}

pub async fn add_to_cart(c: &Client, sku: i64, qty: i64) -> Resp {
    c.submit(
        "/",
        "/cart/add",
        &[("sku", &sku.to_string()), ("quantity", &qty.to_string())],
    )
    .await
}

pub async fn add_address(c: &Client) -> Resp {
    c.submit(
        "/addresses",
        "/addresses",
        &[
            ("recipient", "张三"),
            ("phone", "13812345678"),
            ("province", "浙江省"),
            ("city", "杭州市"),
            ("district", "西湖区"),
            ("detail", "文三路 100 号 2 单元 301"),
            ("next", "/checkout"),
        ],
    )
    .await
}

/// The checkout form's fields as the page renders them (key, expected total, the default
/// address).
pub async fn checkout_fields(c: &Client) -> Vec<(String, String)> {
    let page = c.get("/checkout").await;
    page.assert_status(200);
    let field = |name: &str| {
        let marker = format!("name=\"{name}\" value=\"");
        let start = page.body.find(&marker).expect(name) + marker.len();
        page.body[start..].split('"').next().unwrap().to_string()
    };
    vec![
        ("csrf_token".into(), csrf_in(&page.body)),
        ("key".into(), field("key")),
        ("expected_total".into(), field("expected_total")),
        ("address_id".into(), field("address_id")),
    ]
}

pub async fn post_fields(c: &Client, path: &str, fields: &[(String, String)]) -> Resp {
    c.post_raw(path, serde_urlencoded::to_string(fields).unwrap())
        .await
}

/// Checks out the whole cart; returns the response.
pub async fn checkout(c: &Client) -> Resp {
    let f = checkout_fields(c).await;
    post_fields(c, "/checkout", &f).await
}

fn order_nos_of_checkout(app: &TestApp, checkout: i64) -> Vec<String> {
    orders::table
        .filter(orders::checkout_id.eq(checkout))
        .order(orders::id)
        .select(orders::order_no)
        .load(&mut *app.conn())
        .unwrap()
}

fn status_of(app: &TestApp, no: &str) -> String {
    orders::table
        .filter(orders::order_no.eq(no))
        .select(orders::status)
        .first(&mut *app.conn())
        .unwrap()
}

fn secret(app: &TestApp) -> Vec<u8> {
    app_secrets::table
        .find("csrf")
        .select(app_secrets::value)
        .first::<String>(&mut *app.conn())
        .unwrap()
        .into_bytes()
}

/// Pays a checkout through the simulated provider's page; returns the final response.
pub async fn pay_checkout(c: &Client, checkout: i64) -> Resp {
    let r = c
        .submit(
            &format!("/checkout/{checkout}"),
            "/pay",
            &[("checkout", &checkout.to_string())],
        )
        .await;
    r.assert_status(303);
    let sim = r.location();
    assert!(sim.starts_with("/pay/sim/"), "{sim}");
    c.submit(&sim, &sim, &[("outcome", "succeeded")]).await
}

fn checkout_id(r: &Resp) -> i64 {
    r.location()
        .trim_start_matches("/checkout/")
        .parse()
        .unwrap_or_else(|_| panic!("checkout redirect: {:?} {}", r.location(), r.status))
}

#[tokio::test]
async fn a_buyer_buys_two_skus_and_the_order_goes_from_cart_to_completed() {
    let app = spawn_app();
    let m = merchant(&app, "seller_a").await;
    let skus = product(&app, &m, "纯棉T恤", "颜色: 白, 黑", "12.50", 5).await;
    assert_eq!(skus.len(), 2);

    // An anonymous visitor fills a cart; it carries over at login.
    let email = app.user("buyer_a", Role::Buyer);
    let b = app.client();
    add_to_cart(&b, skus[0], 2).await.assert_status(303);
    let cart = b.get("/cart").await;
    assert!(cart.body.contains("纯棉T恤") && cart.body.contains("¥25.00"));
    b.login(&email, PASSWORD).await.assert_status(303);
    add_to_cart(&b, skus[1], 1).await.assert_status(303);
    let cart = b.get("/cart").await;
    assert!(cart.body.contains("¥37.50"), "both lines after login");
    // A visitor who signs up keeps their cart too.
    let newcomer = app.client();
    add_to_cart(&newcomer, skus[1], 3).await.assert_status(303);
    signup(&newcomer, "cart_newcomer")
        .await
        .1
        .assert_status(303);
    let cart = newcomer.get("/cart").await;
    assert!(
        cart.body.contains("¥37.50"),
        "the visitor's line after signup"
    );
    // Bad quantities and unknown SKUs change nothing.
    // The error page says what was wrong (no form shows it again).
    let r = add_to_cart(&b, skus[1], 0).await;
    r.assert_status(422);
    assert!(r.body.contains("数量需在 1 到 99 之间"), "{}", r.body);
    add_to_cart(&b, skus[1], 100).await.assert_status(422);
    add_to_cart(&b, 999_999, 1).await.assert_status(404);

    // Checkout needs an address; a bad one is refused field by field and writes nothing.
    let bad = b
        .submit(
            "/addresses",
            "/addresses",
            &[
                ("recipient", ""),
                ("phone", "12345"),
                ("province", "浙江省"),
                ("city", "杭州市"),
                ("district", "西湖区"),
                ("detail", "x"),
            ],
        )
        .await;
    bad.assert_status(422);
    assert!(bad.body.contains("请填写 11 位手机号"));
    assert!(bad.body.contains("请填写详细地址"));
    let none = b.get("/checkout").await;
    assert!(none.body.contains("还没有收货地址"));
    let r = add_address(&b).await;
    r.assert_status(303);
    assert_eq!(r.location(), "/checkout");

    let r = checkout(&b).await;
    r.assert_status(303);
    let id = checkout_id(&r);
    let nos = order_nos_of_checkout(&app, id);
    assert_eq!(nos.len(), 1, "one shop, one order");
    let no = nos[0].clone();
    assert_eq!(stock(&app, skus[0]), 3);
    assert_eq!(stock(&app, skus[1]), 4);
    assert!(b.get("/cart").await.body.contains("购物车是空的"));
    let placed = b.get(&format!("/checkout/{id}")).await;
    placed.assert_status(200);
    assert!(placed.body.contains(&no) && placed.body.contains("¥37.50"));

    // The merchant can not ship before payment.
    let ship_page = format!("/merchant/orders/{no}");
    let ship = format!("/merchant/orders/{no}/ship");
    let r = m
        .submit(
            &ship_page,
            &ship,
            &[("carrier", "sf"), ("tracking_no", "SF1234567890")],
        )
        .await;
    r.assert_status(409);
    assert!(r.body.contains("不能发货"));

    let r = pay_checkout(&b, id).await;
    r.assert_status(303);
    assert_eq!(r.location(), format!("/orders/{no}"));
    assert_eq!(status_of(&app, &no), "paid");
    let (subject, body) = app.last_mail("seller_a@example.com").unwrap();
    assert!(subject.contains(&no), "{subject}");
    assert!(body.contains("¥37.50"));
    // The shop's overview counts it: paid today, waiting to ship, and in the daily chart.
    let o = m.get("/merchant/overview").await;
    o.assert_status(200);
    assert!(o.body.contains("id=\"today-gmv\">¥37.50<"), "today's GMV");
    assert!(o.body.contains("id=\"month-gmv\">¥37.50<"));
    assert!(o.body.contains("id=\"to-ship\">1<"));
    assert!(o.body.contains("<svg") && o.body.contains(": ¥37.50</title>"));
    b.get("/merchant/overview").await.assert_status(403);
    // Paying again is refused.
    let again = b
        .submit(&format!("/orders/{no}"), "/pay", &[("order", &no)])
        .await;
    again.assert_status(409);

    // The merchant finds it by status, number and buyer, and ships it.
    let list = m.get("/merchant/orders?status=paid").await;
    assert!(list.body.contains(&no));
    assert!(m
        .get(&format!("/merchant/orders?order_no={}", &no[6..]))
        .await
        .body
        .contains(&no));
    assert!(m
        .get("/merchant/orders?buyer=buyer_a")
        .await
        .body
        .contains(&no));
    assert!(!m
        .get("/merchant/orders?buyer=someone_else")
        .await
        .body
        .contains(&no));
    let r = m
        .submit(
            &ship_page,
            &ship,
            &[("carrier", "sf"), ("tracking_no", "!")],
        )
        .await;
    r.assert_status(422);
    assert!(r.body.contains("运单号为 6–30 位字母或数字"));
    m.submit(
        &ship_page,
        &ship,
        &[("carrier", "sf"), ("tracking_no", "SF1234567890")],
    )
    .await
    .assert_status(303);
    assert_eq!(status_of(&app, &no), "shipped");
    let (subject, body) = app.last_mail(&email).unwrap();
    assert!(subject.contains(&no) && body.contains("SF1234567890") && body.contains("顺丰"));
    m.submit(
        &ship_page,
        &ship,
        &[("carrier", "sf"), ("tracking_no", "SF1234567890")],
    )
    .await
    .assert_status(409);

    // The carrier's scan: a forged one is refused, a signed one lands.
    let anon = app.client();
    anon.post(
        "/logistics/callback/sim",
        &[("order_no", &no), ("signature", "00")],
    )
    .await
    .assert_status(403);
    let sig = sign_delivery(&secret(&app), &no);
    anon.post(
        "/logistics/callback/sim",
        &[("order_no", &no), ("signature", &sig)],
    )
    .await
    .assert_status(200);
    assert_eq!(status_of(&app, &no), "delivered");

    let page = format!("/orders/{no}");
    let r = b
        .submit(
            &page,
            &format!("/orders/{no}/cancel"),
            &[("reason", "other")],
        )
        .await;
    r.assert_status(409);
    b.submit(&page, &format!("/orders/{no}/confirm"), &[])
        .await
        .assert_status(303);
    assert_eq!(status_of(&app, &no), "completed");
    b.submit(&page, &format!("/orders/{no}/confirm"), &[])
        .await
        .assert_status(409);
    let detail = b.get(&page).await;
    for step in [
        "订单已提交",
        "买家已付款",
        "商家已发货",
        "快递已签收",
        "买家确认收货",
    ] {
        assert!(detail.body.contains(step), "timeline shows {step}");
    }
    assert!(b.get("/orders").await.body.contains(&no));
    assert!(b.get("/orders?status=completed").await.body.contains(&no));
    assert!(!b.get("/orders?status=paid").await.body.contains(&no));
    // Sales were counted once.
    use haodian::db::schema::products;
    let sold: i64 = products::table
        .select(products::sales_count)
        .order(products::id.desc())
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!(sold, 3);
}

/// `n` buyers, each logged in with an address.
pub async fn buyers(app: &TestApp, prefix: &str, n: usize) -> Vec<Client> {
    let mut out = Vec::new();
    for i in 0..n {
        let c = app.logged_in(&format!("{prefix}{i}"), Role::Buyer).await;
        add_address(&c).await.assert_status(303);
        out.push(c);
    }
    out
}

#[tokio::test]
async fn a_cart_line_stops_at_99_and_a_cart_at_100_lines() {
    use haodian::db::schema::cart_items;
    let app = spawn_app();
    let m = merchant(&app, "many_skus").await;
    let grid = "颜色: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10\n尺码: A, B, C, D, E, F, G, H, I, J";
    let hundred = product(&app, &m, "百色袜子", grid, "9", 500).await;
    assert_eq!(hundred.len(), 100);
    let extra = product(&app, &m, "另一双袜子", "", "9", 500).await[0];
    let b = app.logged_in("full_cart", Role::Buyer).await;
    let lines = |app: &TestApp| -> Vec<(i64, i64)> {
        cart_items::table
            .order(cart_items::sku_id)
            .select((cart_items::sku_id, cart_items::quantity))
            .load(&mut *app.conn())
            .unwrap()
    };
    // Quantities add up and stop at 99.
    add_to_cart(&b, hundred[0], 60).await.assert_status(303);
    add_to_cart(&b, hundred[0], 60).await.assert_status(303);
    assert_eq!(lines(&app), vec![(hundred[0], 99)]);
    for sku in &hundred[1..] {
        add_to_cart(&b, *sku, 1).await.assert_status(303);
    }
    assert_eq!(lines(&app).len(), 100);
    // A 101st line is refused and nothing is written; adding to a line already there works.
    let full = add_to_cart(&b, extra, 1).await;
    full.assert_status(409);
    assert!(
        full.body.contains("购物车最多放 100 种商品"),
        "{}",
        full.body
    );
    let after = lines(&app);
    assert_eq!(after.len(), 100);
    assert!(after.iter().all(|(sku, _)| *sku != extra));
    add_to_cart(&b, hundred[1], 2).await.assert_status(303);
    assert!(lines(&app).contains(&(hundred[1], 3)));
}

#[tokio::test]
async fn fifty_buyers_on_ten_in_stock_make_exactly_ten_orders() {
    let app = spawn_app();
    let m = merchant(&app, "hot_seller").await;
    let sku = product(&app, &m, "限量球鞋（2026 新款）", "", "99", 10).await[0];
    let bs = buyers(&app, "rush", 50).await;
    let mut prepared = Vec::new();
    for b in &bs {
        add_to_cart(b, sku, 1).await.assert_status(303);
        prepared.push((b.clone(), checkout_fields(b).await));
    }
    let results = futures_util::future::join_all(
        prepared
            .iter()
            .map(|(b, f)| async move { post_fields(b, "/checkout", f).await }),
    )
    .await;
    let ok = results.iter().filter(|r| r.status == 303).count();
    let sold_out: Vec<&Resp> = results.iter().filter(|r| r.status == 409).collect();
    assert_eq!(ok, 10, "exactly the stock");
    assert_eq!(sold_out.len(), 40, "everyone else told");
    for r in &sold_out {
        assert!(r.body.contains("库存不足"), "a clear sold-out answer");
    }
    assert_eq!(stock(&app, sku), 0);
    let n: i64 = orders::table.count().get_result(&mut *app.conn()).unwrap();
    assert_eq!(n, 10);
    let q: Vec<i64> = order_lines::table
        .filter(order_lines::sku_id.eq(sku))
        .select(order_lines::quantity)
        .load(&mut *app.conn())
        .unwrap();
    assert_eq!(q.iter().sum::<i64>(), 10);
}

/// stock + quantity in live lines = initial stock, and stock never negative.
fn assert_stock_invariant(app: &TestApp, initial: &HashMap<i64, i64>) {
    for (sku, init) in initial {
        let s = stock(app, *sku);
        assert!(s >= 0);
        let live: Vec<i64> = order_lines::table
            .filter(order_lines::sku_id.eq(sku))
            .filter(order_lines::restocked.eq(false))
            .select(order_lines::quantity)
            .load(&mut *app.conn())
            .unwrap();
        assert_eq!(
            s + live.iter().sum::<i64>(),
            *init,
            "stock invariant for SKU {sku}"
        );
    }
}

#[tokio::test]
async fn random_multi_sku_carts_under_concurrency_never_oversell() {
    use rand::{Rng, SeedableRng};
    let seed: u64 = rand::random();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let app = spawn_app();
    let m = merchant(&app, "multi_seller").await;
    let m2 = merchant(&app, "other_seller").await;
    let mut initial = HashMap::new();
    let mut all = Vec::new();
    for (mm, title) in [(&m, "卫衣（2026 新款）"), (&m2, "帆布包（2026 新款）")] {
        let stock_n = rng.gen_range(1..12);
        for s in product(&app, mm, title, "颜色: 红, 蓝", "20", stock_n).await {
            initial.insert(s, stock_n);
            all.push(s);
        }
    }
    let bs = buyers(&app, "mix", 24).await;
    let mut prepared = Vec::new();
    for b in &bs {
        let mut wanted = Vec::new();
        for s in &all {
            if rng.gen_bool(0.5) {
                let q = rng.gen_range(1..=initial[s].min(3));
                add_to_cart(b, *s, q).await.assert_status(303);
                wanted.push((*s, q));
            }
        }
        if wanted.is_empty() {
            add_to_cart(b, all[0], 1).await.assert_status(303);
        }
        prepared.push((b.clone(), checkout_fields(b).await));
    }
    // While the checkouts run, a reader checks the invariant in single-statement snapshots.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let checker = {
        let (pool, stop, initial) = (app.pool.clone(), stop.clone(), initial.clone());
        std::thread::spawn(move || {
            let mut samples = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || samples == 0 {
                let rows: Vec<(i64, i64, i64)> = skus::table
                    .select((
                        skus::id,
                        skus::stock,
                        diesel::dsl::sql::<diesel::sql_types::BigInt>(
                            "CAST(COALESCE((SELECT SUM(quantity) FROM order_lines \
                             WHERE order_lines.sku_id = skus.id AND NOT order_lines.restocked), 0) AS BIGINT)",
                        ),
                    ))
                    .load(&mut *pool.get().unwrap())
                    .unwrap();
                for (sku, stock, sold) in rows {
                    if let Some(init) = initial.get(&sku) {
                        assert!(stock >= 0);
                        assert_eq!(stock + sold, *init, "invariant during load, SKU {sku}");
                    }
                }
                samples += 1;
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            samples
        })
    };
    let results = futures_util::future::join_all(
        prepared
            .iter()
            .map(|(b, f)| async move { post_fields(b, "/checkout", f).await }),
    )
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let samples = checker.join().expect("the invariant held during the load");
    assert!(samples > 0);
    for r in &results {
        assert!(
            r.status == 303 || (r.status == 409 && r.body.contains("库存不足")),
            "seed {seed}: {} {}",
            r.status,
            &r.body[..r.body.len().min(300)]
        );
    }
    assert!(results.iter().any(|r| r.status == 303), "seed {seed}");
    assert_stock_invariant(&app, &initial);
    // Each checkout's orders add up to what it charged.
    let per_checkout: Vec<(i64, i64)> = checkouts::table
        .select((checkouts::id, checkouts::total_fen))
        .load(&mut *app.conn())
        .unwrap();
    for (id, total) in per_checkout {
        let sum: Vec<i64> = orders::table
            .filter(orders::checkout_id.eq(id))
            .select(orders::total_fen)
            .load(&mut *app.conn())
            .unwrap();
        assert_eq!(sum.iter().sum::<i64>(), total, "seed {seed}");
    }
}

#[tokio::test]
async fn one_key_posted_twenty_times_at_once_makes_one_set_of_orders() {
    let app = spawn_app();
    let m1 = merchant(&app, "idem_one").await;
    let m2 = merchant(&app, "idem_two").await;
    let a = product(&app, &m1, "围巾（2026 新款）", "", "30", 50).await[0];
    let b2 = product(&app, &m2, "手套（2026 新款）", "", "15", 50).await[0];
    let b = &buyers(&app, "idem", 1).await[0];
    add_to_cart(b, a, 2).await.assert_status(303);
    add_to_cart(b, b2, 1).await.assert_status(303);
    let f = checkout_fields(b).await;
    let results = futures_util::future::join_all(
        (0..20).map(|_| async { post_fields(b, "/checkout", &f).await }),
    )
    .await;
    let first = results[0].location();
    for r in &results {
        r.assert_status(303);
        assert_eq!(
            r.location(),
            first,
            "every response leads to the same orders"
        );
    }
    let id = checkout_id(&results[0]);
    assert_eq!(
        order_nos_of_checkout(&app, id).len(),
        2,
        "one order per shop"
    );
    let n: i64 = orders::table.count().get_result(&mut *app.conn()).unwrap();
    assert_eq!(n, 2);
    assert_eq!(stock(&app, a), 48);
    assert_eq!(stock(&app, b2), 49);
    // Later, the same key still answers with the same checkout.
    let again = post_fields(b, "/checkout", &f).await;
    assert_eq!(again.location(), first);
}

#[tokio::test]
async fn buyers_and_merchants_never_reach_orders_that_are_not_theirs() {
    let app = spawn_app();
    let m = merchant(&app, "owner_shop").await;
    let other_m = merchant(&app, "rival_shop").await;
    let sku = product(&app, &m, "茶杯（2026 新款）", "", "10", 5).await[0];
    let b = &buyers(&app, "own", 1).await[0];
    let thief = &buyers(&app, "thief", 1).await[0];
    add_to_cart(b, sku, 1).await.assert_status(303);
    let id = checkout_id(&checkout(b).await);
    let no = order_nos_of_checkout(&app, id)[0].clone();

    thief.get(&format!("/orders/{no}")).await.assert_status(404);
    thief
        .get(&format!("/checkout/{id}"))
        .await
        .assert_status(404);
    assert!(!thief.get("/orders").await.body.contains(&no));
    let page = "/orders";
    thief
        .submit(
            page,
            &format!("/orders/{no}/cancel"),
            &[("reason", "other")],
        )
        .await
        .assert_status(404);
    thief
        .submit(page, "/pay", &[("order", &no)])
        .await
        .assert_status(404);
    thief
        .submit(page, "/pay", &[("checkout", &id.to_string())])
        .await
        .assert_status(404);
    // The buyer's own intent is not the thief's either.
    let r = b
        .submit(
            &format!("/checkout/{id}"),
            "/pay",
            &[("checkout", &id.to_string())],
        )
        .await;
    let sim = r.location();
    thief.get(&sim).await.assert_status(404);
    thief
        .submit(page, &sim, &[("outcome", "succeeded")])
        .await
        .assert_status(404);
    assert_eq!(status_of(&app, &no), "pending_payment");
    b.submit(&sim, &sim, &[("outcome", "succeeded")])
        .await
        .assert_status(303);

    other_m
        .get(&format!("/merchant/orders/{no}"))
        .await
        .assert_status(404);
    assert!(!other_m.get("/merchant/orders").await.body.contains(&no));
    other_m
        .submit(
            "/merchant/orders",
            &format!("/merchant/orders/{no}/ship"),
            &[("carrier", "sf"), ("tracking_no", "SF1234567890")],
        )
        .await
        .assert_status(404);
    // A buyer is not a merchant.
    b.get("/merchant/orders").await.assert_status(403);
    assert_eq!(status_of(&app, &no), "paid");
    m.get(&format!("/merchant/orders/{no}"))
        .await
        .assert_status(200);
    // Anonymous visitors are sent to log in.
    let anon = app.client();
    let r = anon.get(&format!("/orders/{no}")).await;
    r.assert_status(303);
    assert!(r.location().starts_with("/login"));
}

#[tokio::test]
async fn payment_callbacks_are_signed_and_applied_once() {
    let app = spawn_app();
    let m = merchant(&app, "cb_shop").await;
    let sku = product(&app, &m, "台灯（2026 新款）", "", "88", 5).await[0];
    let b = &buyers(&app, "cb", 1).await[0];
    add_to_cart(b, sku, 1).await.assert_status(303);
    let id = checkout_id(&checkout(b).await);
    let no = order_nos_of_checkout(&app, id)[0].clone();
    let r = b
        .submit(
            &format!("/checkout/{id}"),
            "/pay",
            &[("checkout", &id.to_string())],
        )
        .await;
    let intent = r.location().trim_start_matches("/pay/sim/").to_string();
    let key = secret(&app);
    let anon = app.client();
    let post = |event: &str, outcome: &str, sig: String| {
        let anon = anon.clone();
        let (event, outcome, intent) = (event.to_string(), outcome.to_string(), intent.clone());
        async move {
            anon.post(
                "/pay/callback/sim",
                &[
                    ("event_id", event.as_str()),
                    ("intent", intent.as_str()),
                    ("outcome", outcome.as_str()),
                    ("signature", sig.as_str()),
                ],
            )
            .await
        }
    };
    // Forged: refused, nothing changes.
    post("evt_forged_1", "succeeded", "ab".repeat(32))
        .await
        .assert_status(403);
    assert_eq!(status_of(&app, &no), "pending_payment");
    // A failure leaves the order payable.
    let sig = sign(&key, &format!("pay:evt_fail_1:{intent}:failed"));
    post("evt_fail_1", "failed", sig).await.assert_status(200);
    assert_eq!(status_of(&app, &no), "pending_payment");
    // Pay again with a new intent; its success event, delivered 5 times concurrently.
    let r = b
        .submit(&format!("/orders/{no}"), "/pay", &[("order", &no)])
        .await;
    let intent2 = r.location().trim_start_matches("/pay/sim/").to_string();
    let sig = sign(&key, &format!("pay:evt_ok_1:{intent2}:succeeded"));
    let results = futures_util::future::join_all((0..5).map(|_| {
        let anon = anon.clone();
        let (i, s) = (intent2.clone(), sig.clone());
        async move {
            anon.post(
                "/pay/callback/sim",
                &[
                    ("event_id", "evt_ok_1"),
                    ("intent", i.as_str()),
                    ("outcome", "succeeded"),
                    ("signature", s.as_str()),
                ],
            )
            .await
        }
    }))
    .await;
    for r in &results {
        r.assert_status(200);
    }
    assert_eq!(
        results.iter().filter(|r| r.body == "ok").count(),
        1,
        "applied once"
    );
    assert_eq!(status_of(&app, &no), "paid");
    let paid_mails: i64 = mail_outbox::table
        .filter(mail_outbox::kind.eq("order_paid"))
        .count()
        .get_result(&mut *app.conn())
        .unwrap();
    assert_eq!(paid_mails, 1, "the merchant is told once");
    let statuses: Vec<String> = payments::table
        .order(payments::id)
        .select(payments::status)
        .load(&mut *app.conn())
        .unwrap();
    assert_eq!(statuses, ["failed", "succeeded"]);
}

#[tokio::test]
async fn unpaid_orders_expire_once_and_late_payments_are_refunded() {
    let app = spawn_app();
    let m = merchant(&app, "exp_shop").await;
    let sku = product(&app, &m, "花瓶（2026 新款）", "", "40", 3).await[0];
    let b = &buyers(&app, "exp", 1).await[0];
    add_to_cart(b, sku, 2).await.assert_status(303);
    let id = checkout_id(&checkout(b).await);
    let no = order_nos_of_checkout(&app, id)[0].clone();
    let r = b
        .submit(
            &format!("/checkout/{id}"),
            "/pay",
            &[("checkout", &id.to_string())],
        )
        .await;
    let intent = r.location().trim_start_matches("/pay/sim/").to_string();
    assert_eq!(stock(&app, sku), 1);
    let now = chrono::Utc::now().naive_utc();
    // Not yet due.
    assert_eq!(svc::cancel_expired(&mut app.conn(), now, 100).unwrap(), 0);
    // Two nodes run the job at once: the order is cancelled and restocked once.
    let later = now + chrono::Duration::minutes(31);
    let (p1, p2) = (app.pool.clone(), app.pool.clone());
    let t1 = std::thread::spawn(move || svc::cancel_expired(&mut p1.get().unwrap(), later, 100));
    let t2 = std::thread::spawn(move || svc::cancel_expired(&mut p2.get().unwrap(), later, 100));
    let done = t1.join().unwrap().unwrap() + t2.join().unwrap().unwrap();
    assert_eq!(done, 1);
    assert_eq!(status_of(&app, &no), "cancelled");
    assert_eq!(stock(&app, sku), 3);
    assert_eq!(svc::cancel_expired(&mut app.conn(), later, 100).unwrap(), 0);
    // The payment arrives after the cancellation: the order stays cancelled, money goes back.
    let key = secret(&app);
    let sig = sign(&key, &format!("pay:evt_late_1:{intent}:succeeded"));
    app.client()
        .post(
            "/pay/callback/sim",
            &[
                ("event_id", "evt_late_1"),
                ("intent", intent.as_str()),
                ("outcome", "succeeded"),
                ("signature", sig.as_str()),
            ],
        )
        .await
        .assert_status(200);
    assert_eq!(status_of(&app, &no), "cancelled");
    assert_eq!(stock(&app, sku), 3);
    let st: String = payments::table
        .select(payments::status)
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!(st, "refunded");
    let detail = b.get(&format!("/orders/{no}")).await;
    assert!(detail.body.contains("超时未付款"));
}

#[tokio::test]
async fn shipped_and_delivered_orders_are_confirmed_automatically() {
    let app = spawn_app();
    let m = merchant(&app, "auto_shop").await;
    let sku = product(&app, &m, "抱枕（2026 新款）", "", "25", 10).await[0];
    let b = &buyers(&app, "auto", 1).await[0];
    let mut nos = Vec::new();
    for _ in 0..2 {
        add_to_cart(b, sku, 1).await.assert_status(303);
        let id = checkout_id(&checkout(b).await);
        pay_checkout(b, id).await.assert_status(303);
        let no = order_nos_of_checkout(&app, id)[0].clone();
        m.submit(
            &format!("/merchant/orders/{no}"),
            &format!("/merchant/orders/{no}/ship"),
            &[("carrier", "zto"), ("tracking_no", "ZT00000001")],
        )
        .await
        .assert_status(303);
        nos.push(no);
    }
    let now = chrono::Utc::now().naive_utc();
    svc::mark_delivered(&mut app.conn(), &nos[0], now).unwrap();
    let c = &mut app.conn();
    assert_eq!(
        svc::auto_confirm(c, now + chrono::Duration::days(9), 10, 15, 100).unwrap(),
        0
    );
    assert_eq!(
        svc::auto_confirm(c, now + chrono::Duration::days(11), 10, 15, 100).unwrap(),
        1
    );
    assert_eq!(status_of(&app, &nos[0]), "completed");
    assert_eq!(status_of(&app, &nos[1]), "shipped");
    assert_eq!(
        svc::auto_confirm(c, now + chrono::Duration::days(16), 10, 15, 100).unwrap(),
        1
    );
    assert_eq!(status_of(&app, &nos[1]), "completed");
    assert_eq!(
        svc::auto_confirm(c, now + chrono::Duration::days(30), 10, 15, 100).unwrap(),
        0
    );
}

/// The model of the order state machine the property test checks the service against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Model {
    Pending,
    Paid,
    Shipped,
    Delivered,
    Completed,
    Cancelled,
}

impl Model {
    fn name(self) -> &'static str {
        match self {
            Model::Pending => "pending_payment",
            Model::Paid => "paid",
            Model::Shipped => "shipped",
            Model::Delivered => "delivered",
            Model::Completed => "completed",
            Model::Cancelled => "cancelled",
        }
    }
    /// The state after `op`, or None when `op` is illegal here.
    fn step(self, op: u8) -> Option<Model> {
        use Model::*;
        match (op, self) {
            (0, Pending) => Some(Paid),
            (1, Pending | Paid) => Some(Cancelled),
            (2, Paid) => Some(Shipped),
            (3, Shipped) => Some(Delivered),
            (4, Shipped | Delivered) => Some(Completed),
            (5, Pending) => Some(Cancelled),
            _ => None,
        }
    }
}

#[tokio::test]
async fn random_event_sequences_follow_the_state_machine() {
    use rand::{Rng, SeedableRng};
    let seed: u64 = rand::random();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let app = spawn_app();
    let m = merchant(&app, "prop_shop").await;
    let sku = product(&app, &m, "马克杯（2026 新款）", "", "9.9", 1000).await[0];
    let merchant_user = app.session_user("prop_shop", Vec::new());
    let b = &buyers(&app, "prop", 1).await[0];
    let buyer = app.session_user("prop0", Vec::new());
    let provider = haodian::orders::payment::Simulated::new(&secret(&app));
    let mut initial = HashMap::new();
    initial.insert(sku, 1000);
    for round in 0..12 {
        add_to_cart(b, sku, 1 + round % 3).await.assert_status(303);
        let id = checkout_id(&checkout(b).await);
        let no = order_nos_of_checkout(&app, id)[0].clone();
        let mut state = Model::Pending;
        let mut now = chrono::Utc::now().naive_utc();
        for _ in 0..8 {
            let op: u8 = rng.gen_range(0..6);
            now += chrono::Duration::minutes(1);
            let c = &mut app.conn();
            let result: Result<(), String> = match op {
                0 => svc::start_payment(c, &buyer, "sim", None, Some(&no), now)
                    .map_err(|e| e.to_string())
                    .and_then(|intent| {
                        let (ev, sig) = provider.callback(&intent, true);
                        let ev = haodian::orders::payment::PaymentProvider::verify(
                            &provider,
                            &ev,
                            &intent,
                            "succeeded",
                            &sig,
                        )
                        .unwrap();
                        svc::apply_payment_event(c, &ev, now)
                            .map(|_| ())
                            .map_err(|e| e.to_string())
                    }),
                1 => svc::cancel_by_buyer(c, &buyer, &no, "changed_mind", now)
                    .map_err(|e| e.to_string()),
                2 => svc::ship(
                    c,
                    &merchant_user,
                    &no,
                    &svc::ShipForm {
                        carrier: "sf".into(),
                        tracking_no: "SF20261130001".into(),
                    },
                    now,
                )
                .map_err(|e| e.to_string()),
                3 => svc::mark_delivered(c, &no, now).map_err(|e| e.to_string()),
                4 => svc::confirm_receipt(c, &buyer, &no, now).map_err(|e| e.to_string()),
                _ => {
                    // The timeout job, run as if the deadline had passed.
                    let before = status_of(&app, &no);
                    svc::cancel_expired(c, now + chrono::Duration::hours(1), 1000)
                        .map_err(|e| e.to_string())
                        .and_then(|_| {
                            if before == "pending_payment" {
                                Ok(())
                            } else {
                                Err("conflict: nothing due".into())
                            }
                        })
                }
            };
            match state.step(op) {
                Some(next) => {
                    assert!(
                        result.is_ok(),
                        "seed {seed}: op {op} from {state:?}: {result:?}"
                    );
                    state = next;
                }
                None => {
                    let e = result.expect_err(&format!("seed {seed}: op {op} from {state:?}"));
                    assert!(e.contains("conflict"), "seed {seed}: {e}");
                }
            }
            assert_eq!(status_of(&app, &no), state.name(), "seed {seed}");
        }
        assert_stock_invariant(&app, &initial);
    }
}

fn refund_ids(app: &TestApp) -> Vec<(i64, String)> {
    use haodian::db::schema::refunds;
    refunds::table
        .order(refunds::id)
        .select((refunds::id, refunds::status))
        .load(&mut *app.conn())
        .unwrap()
}

fn refunded_fen(app: &TestApp, no: &str) -> i64 {
    orders::table
        .filter(orders::order_no.eq(no))
        .select(orders::refunded_fen)
        .first(&mut *app.conn())
        .unwrap()
}

async fn request_refund(
    c: &Client,
    no: &str,
    fields: &[(&str, &str)],
    files: &[(&str, &[u8])],
) -> Resp {
    submit_multipart(
        c,
        &format!("/orders/{no}/refund"),
        &format!("/orders/{no}/refund"),
        fields,
        files,
    )
    .await
}

/// A paid order of `qty` units for a new buyer; returns (buyer, order number).
pub async fn paid_order(app: &TestApp, prefix: &str, sku: i64, qty: i64) -> (Client, String) {
    let b = buyers(app, prefix, 1).await.remove(0);
    add_to_cart(&b, sku, qty).await.assert_status(303);
    let id = checkout_id(&checkout(&b).await);
    pay_checkout(&b, id).await.assert_status(303);
    let no = order_nos_of_checkout(app, id)[0].clone();
    (b, no)
}

#[tokio::test]
async fn an_unshipped_order_is_refunded_whole_and_closed_and_refunds_are_not_paid_twice() {
    let app = spawn_app();
    let m = merchant(&app, "rf_shop").await;
    let rival = merchant(&app, "rf_rival").await;
    let sku = product(&app, &m, "羊毛围巾（2026 新款）", "", "60", 5).await[0];
    let (b, no) = paid_order(&app, "rfa", sku, 2).await;
    assert_eq!(stock(&app, sku), 3);
    // Another buyer can not ask for this order's money.
    let other = buyers(&app, "rfx", 1).await.remove(0);
    request_refund(
        &other,
        &no,
        &[("kind", "refund_only"), ("reason", "changed_mind")],
        &[],
    )
    .await
    .assert_status(404);
    // A return is not possible before shipping; a bad reason is refused.
    let r = request_refund(&b, &no, &[("kind", "refund_only"), ("reason", "nope")], &[]).await;
    r.assert_status(422);
    assert!(r.body.contains("请选择退款原因"));
    let r = request_refund(
        &b,
        &no,
        &[("kind", "return_refund"), ("reason", "quality")],
        &[],
    )
    .await;
    r.assert_status(409);
    assert!(refund_ids(&app).is_empty(), "nothing written");
    request_refund(
        &b,
        &no,
        &[("kind", "refund_only"), ("reason", "changed_mind")],
        &[],
    )
    .await
    .assert_status(303);
    let (subject, _) = app.last_mail("rf_shop@example.com").unwrap();
    assert!(
        subject.contains(&no) && subject.contains("售后"),
        "{subject}"
    );
    // While it is open: no second request, no shipping, no cancelling.
    let r = request_refund(
        &b,
        &no,
        &[("kind", "refund_only"), ("reason", "other")],
        &[],
    )
    .await;
    r.assert_status(409);
    assert!(r.body.contains("正在处理的售后申请"));
    m.submit(
        &format!("/merchant/orders/{no}"),
        &format!("/merchant/orders/{no}/ship"),
        &[("carrier", "sf"), ("tracking_no", "SF1234567890")],
    )
    .await
    .assert_status(409);
    b.submit(
        &format!("/orders/{no}"),
        &format!("/orders/{no}/cancel"),
        &[("reason", "other")],
    )
    .await
    .assert_status(409);
    let (rid, st) = refund_ids(&app)[0].clone();
    assert_eq!(st, "requested");
    // Only this shop decides it.
    rival
        .submit(
            "/merchant/orders",
            &format!("/merchant/refunds/{rid}/approve"),
            &[("order_no", &no)],
        )
        .await
        .assert_status(404);
    m.submit(
        &format!("/merchant/orders/{no}"),
        &format!("/merchant/refunds/{rid}/approve"),
        &[("order_no", &no)],
    )
    .await
    .assert_status(303);
    assert_eq!(status_of(&app, &no), "closed");
    assert_eq!(refunded_fen(&app, &no), 12000);
    assert_eq!(stock(&app, sku), 5, "an unshipped order's stock comes back");
    let (subject, _) = app.last_mail("rfa0@example.com").unwrap();
    assert!(subject.contains(&no));
    // Deciding again, or asking again, changes nothing.
    m.submit(
        &format!("/merchant/orders/{no}"),
        &format!("/merchant/refunds/{rid}/approve"),
        &[("order_no", &no)],
    )
    .await
    .assert_status(409);
    request_refund(
        &b,
        &no,
        &[("kind", "refund_only"), ("reason", "other")],
        &[],
    )
    .await
    .assert_status(409);
    assert_eq!(refunded_fen(&app, &no), 12000);
    assert_eq!(stock(&app, sku), 5);
}

#[tokio::test]
async fn returns_rejections_and_unanswered_requests() {
    let app = spawn_app();
    let m = merchant(&app, "ret_shop").await;
    let sku = product(&app, &m, "陶瓷茶具（2026 新款）", "", "100", 10).await[0];
    let ship = |no: String| {
        let m = m.clone();
        async move {
            m.submit(
                &format!("/merchant/orders/{no}"),
                &format!("/merchant/orders/{no}/ship"),
                &[("carrier", "yto"), ("tracking_no", "YT1234567890")],
            )
            .await
            .assert_status(303);
        }
    };
    // A return and refund with a photo, a partial amount, the goods restocked.
    let (b, no) = paid_order(&app, "ret", sku, 2).await;
    ship(no.clone()).await;
    let r = request_refund(
        &b,
        &no,
        &[
            ("kind", "return_refund"),
            ("reason", "quality"),
            ("amount", "300"),
        ],
        &[],
    )
    .await;
    r.assert_status(422);
    assert!(r.body.contains("不超过可退金额"));
    let r = request_refund(
        &b,
        &no,
        &[("kind", "return_refund"), ("reason", "quality")],
        &[("photos", b"not an image".as_slice())],
    )
    .await;
    r.assert_status(422);
    assert!(refund_ids(&app).is_empty());
    request_refund(
        &b,
        &no,
        &[
            ("kind", "return_refund"),
            ("reason", "quality"),
            ("amount", "150"),
            ("note", "杯口有裂纹"),
        ],
        &[("photos", crate::flows::PNG)],
    )
    .await
    .assert_status(303);
    let page = b.get(&format!("/orders/{no}")).await;
    assert!(page.body.contains("杯口有裂纹"));
    // The photo is evidence: the buyer and the shop see it through the order, strangers and
    // the public file route do not.
    let photo = page
        .body
        .split(&format!("/orders/{no}/evidence/"))
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the photo is shown")
        .to_string();
    let evidence = format!("/orders/{no}/evidence/{photo}");
    b.get(&evidence).await.assert_status(200);
    m.get(&evidence).await.assert_status(200);
    let stranger = buyers(&app, "peek", 1).await.remove(0);
    stranger.get(&evidence).await.assert_status(404);
    stranger
        .get(&format!("/media/{photo}"))
        .await
        .assert_status(404);
    app.client()
        .get(&format!("/media/{photo}"))
        .await
        .assert_status(404);
    b.get(&format!("/media/{photo}")).await.assert_status(200);
    b.get(&format!("/orders/{no}/evidence/999999"))
        .await
        .assert_status(404);
    let (rid, _) = refund_ids(&app)[0].clone();
    let mpage = format!("/merchant/orders/{no}");
    let r = m
        .submit(
            &mpage,
            &format!("/merchant/refunds/{rid}/approve"),
            &[("order_no", &no)],
        )
        .await;
    r.assert_status(422);
    assert!(r.body.contains("请填写退货地址"));
    m.submit(
        &mpage,
        &format!("/merchant/refunds/{rid}/approve"),
        &[
            ("order_no", &no),
            ("return_address", "浙江省杭州市余杭区仓前街道 1 号 退货组"),
        ],
    )
    .await
    .assert_status(303);
    assert_eq!(refund_ids(&app)[0].1, "awaiting_return");
    b.submit(
        &format!("/orders/{no}"),
        &format!("/orders/{no}/refund/return"),
        &[("return_tracking_no", "SF5555555555")],
    )
    .await
    .assert_status(303);
    assert!(m.get(&mpage).await.body.contains("SF5555555555"));
    m.submit(
        &mpage,
        &format!("/merchant/refunds/{rid}/received"),
        &[("order_no", &no), ("restock", "1")],
    )
    .await
    .assert_status(303);
    assert_eq!(refunded_fen(&app, &no), 15000);
    assert_eq!(
        status_of(&app, &no),
        "shipped",
        "a partial refund leaves the order open"
    );
    assert_eq!(
        stock(&app, sku),
        10,
        "restocked at the merchant's choice, once"
    );

    // A rejection with its reason; the buyer may ask again.
    let (b2, no2) = paid_order(&app, "rej", sku, 1).await;
    ship(no2.clone()).await;
    request_refund(
        &b2,
        &no2,
        &[("kind", "refund_only"), ("reason", "not_received")],
        &[],
    )
    .await
    .assert_status(303);
    let (rid2, _) = refund_ids(&app)[1].clone();
    let mpage2 = format!("/merchant/orders/{no2}");
    let r = m
        .submit(
            &mpage2,
            &format!("/merchant/refunds/{rid2}/reject"),
            &[("order_no", &no2), ("reject_reason", "x")],
        )
        .await;
    r.assert_status(422);
    m.submit(
        &mpage2,
        &format!("/merchant/refunds/{rid2}/reject"),
        &[
            ("order_no", &no2),
            ("reject_reason", "物流显示已签收，请先联系快递"),
        ],
    )
    .await
    .assert_status(303);
    assert!(b2
        .get(&format!("/orders/{no2}"))
        .await
        .body
        .contains("物流显示已签收"));
    // Asked again and left unanswered: approved automatically after the window, once.
    request_refund(
        &b2,
        &no2,
        &[("kind", "refund_only"), ("reason", "not_received")],
        &[],
    )
    .await
    .assert_status(303);
    let now = chrono::Utc::now().naive_utc();
    let c = &mut app.conn();
    assert_eq!(
        haodian::orders::refunds::auto_approve(c, now + chrono::Duration::hours(47), 100).unwrap(),
        0
    );
    assert_eq!(
        haodian::orders::refunds::auto_approve(c, now + chrono::Duration::hours(49), 100).unwrap(),
        1
    );
    assert_eq!(
        haodian::orders::refunds::auto_approve(c, now + chrono::Duration::hours(50), 100).unwrap(),
        0
    );
    assert_eq!(refunded_fen(&app, &no2), 10000);
    assert_eq!(status_of(&app, &no2), "closed");
    assert!(b2
        .get(&format!("/orders/{no2}"))
        .await
        .body
        .contains("系统已自动同意"));
    // The merchant's list shows them all.
    let list = m.get("/merchant/refunds").await;
    assert!(list.body.contains(&no) && list.body.contains(&no2));
    assert!(!m
        .get("/merchant/refunds?status=requested")
        .await
        .body
        .contains(&no2));
}

#[tokio::test]
async fn complaints_reach_the_shop_and_the_moderators_who_rule_once_with_an_audit_row() {
    use haodian::db::schema::{audit_log, complaints};
    let app = spawn_app();
    let m = merchant(&app, "cp_shop").await;
    let rival = merchant(&app, "cp_rival").await;
    let sku = product(&app, &m, "蓝牙耳机（2026 新款）", "", "199", 5).await[0];
    let (b, no) = paid_order(&app, "cpb", sku, 1).await;
    let page = format!("/orders/{no}/complaint");
    let r = submit_multipart(
        &b,
        &page,
        &page,
        &[("reason", "late_shipping"), ("body", "短")],
        &[],
    )
    .await;
    r.assert_status(422);
    assert!(r.body.contains("10–1000"));
    let stranger = buyers(&app, "cpx", 1).await.remove(0);
    submit_multipart(
        &stranger,
        "/orders",
        &page,
        &[
            ("reason", "late_shipping"),
            ("body", "别人的订单也想投诉一下看看"),
        ],
        &[],
    )
    .await
    .assert_status(404);
    submit_multipart(
        &b,
        &page,
        &page,
        &[
            ("reason", "late_shipping"),
            ("body", "付款三天了还没有发货，客服也不回复"),
        ],
        &[("photos", crate::flows::PNG)],
    )
    .await
    .assert_status(303);
    submit_multipart(
        &b,
        &page,
        &page,
        &[("reason", "other"), ("body", "再投诉一次看看会不会重复")],
        &[],
    )
    .await
    .assert_status(409);
    let id: i64 = complaints::table
        .select(complaints::id)
        .first(&mut *app.conn())
        .unwrap();
    // The shop sees it and answers once; another shop does not see it.
    assert!(m
        .get("/merchant/complaints")
        .await
        .body
        .contains("客服也不回复"));
    assert!(!rival
        .get("/merchant/complaints")
        .await
        .body
        .contains("客服也不回复"));
    rival
        .submit(
            "/merchant/complaints",
            &format!("/merchant/complaints/{id}/reply"),
            &[("reply", "不是我们的")],
        )
        .await
        .assert_status(404);
    m.submit(
        "/merchant/complaints",
        &format!("/merchant/complaints/{id}/reply"),
        &[("reply", "仓库缺货，今天发出")],
    )
    .await
    .assert_status(303);
    m.submit(
        "/merchant/complaints",
        &format!("/merchant/complaints/{id}/reply"),
        &[("reply", "再回复一次")],
    )
    .await
    .assert_status(409);
    // Buyers and merchants can not rule; moderators see both sides and rule once.
    b.get("/admin/complaints").await.assert_status(403);
    b.submit(
        "/orders",
        &format!("/admin/complaints/{id}/rule"),
        &[("verdict", "not_at_fault"), ("note", "我自己判")],
    )
    .await
    .assert_status(403);
    let moderator = app.logged_in("cp_mod", Role::Moderator).await;
    let queue = moderator.get("/admin/complaints").await;
    assert!(queue.body.contains("客服也不回复") && queue.body.contains("仓库缺货"));
    let photo = queue
        .body
        .split(&format!("/orders/{no}/evidence/"))
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the evidence is shown")
        .to_string();
    moderator
        .get(&format!("/orders/{no}/evidence/{photo}"))
        .await
        .assert_status(200);
    moderator
        .get(&format!("/media/{photo}"))
        .await
        .assert_status(200);
    rival
        .get(&format!("/orders/{no}/evidence/{photo}"))
        .await
        .assert_status(404);
    moderator
        .submit(
            "/admin/complaints",
            &format!("/admin/complaints/{id}/rule"),
            &[("verdict", "maybe"), ("note", "说明说明")],
        )
        .await
        .assert_status(422);
    let audits_before: i64 = audit_log::table
        .count()
        .get_result(&mut *app.conn())
        .unwrap();
    moderator
        .submit(
            "/admin/complaints",
            &format!("/admin/complaints/{id}/rule"),
            &[("verdict", "at_fault"), ("note", "超过 48 小时未发货")],
        )
        .await
        .assert_status(303);
    moderator
        .submit(
            "/admin/complaints?ruled=1",
            &format!("/admin/complaints/{id}/rule"),
            &[("verdict", "not_at_fault"), ("note", "改判一下")],
        )
        .await
        .assert_status(409);
    let audits: Vec<(String, Option<i64>)> = audit_log::table
        .order(audit_log::id)
        .select((audit_log::action, audit_log::shop_id))
        .load(&mut *app.conn())
        .unwrap();
    assert_eq!(audits.len() as i64, audits_before + 1, "one audit row");
    let (action, shop) = audits.last().unwrap().clone();
    assert_eq!(action, "complaint.at_fault");
    assert!(shop.is_some());
    let fault: Option<bool> = complaints::table
        .select(complaints::merchant_at_fault)
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!(fault, Some(true));
    for who in ["cp_shop@example.com", "cpb0@example.com"] {
        let (subject, body) = app.last_mail(who).unwrap();
        assert!(
            subject.contains(&format!("#{id}")) && body.contains("商家有责"),
            "{who}"
        );
    }
    assert!(b
        .get(&format!("/orders/{no}"))
        .await
        .body
        .contains("超过 48 小时未发货"));
}

/// Inserts `n` paid orders of the shop straight into the database (for volume).
fn bulk_paid_orders(app: &TestApp, shop_handle: &str, buyer_handle: &str, n: usize) {
    use haodian::db::schema::shops;
    let c = &mut *app.conn();
    let shop_id: i64 = shops::table
        .inner_join(users::table)
        .filter(users::handle.eq(shop_handle))
        .select(shops::id)
        .first(c)
        .unwrap();
    let buyer: i64 = users::table
        .filter(users::handle.eq(buyer_handle))
        .select(users::id)
        .first(c)
        .unwrap();
    let now = chrono::Utc::now().naive_utc();
    // One transaction: quick enough that the clients' pooled keep-alive connections stay
    // open meanwhile.
    c.transaction::<_, diesel::result::Error, _>(|c| {
        for i in 0..n {
            diesel::insert_into(checkouts::table)
                .values((
                    checkouts::buyer_id.eq(buyer),
                    checkouts::idem_key.eq(format!("bulk-key-{i:08}-xxxxxxxx")),
                    checkouts::total_fen.eq(100i64),
                    checkouts::created_at.eq(now),
                ))
                .execute(c)
                .unwrap();
            let cid: i64 = checkouts::table
                .order(checkouts::id.desc())
                .select(checkouts::id)
                .first(c)
                .unwrap();
            diesel::insert_into(orders::table)
                .values((
                    orders::order_no.eq(format!("99{i:014}")),
                    orders::checkout_id.eq(cid),
                    orders::buyer_id.eq(buyer),
                    orders::shop_id.eq(shop_id),
                    orders::status.eq("paid"),
                    orders::items_fen.eq(100i64),
                    orders::total_fen.eq(100i64),
                    orders::recipient.eq("批量"),
                    orders::phone.eq("13800000000"),
                    orders::region.eq("浙江省 杭州市 西湖区"),
                    orders::address_detail.eq("文三路 1 号"),
                    orders::created_at.eq(now),
                    orders::pay_deadline.eq(now),
                    orders::paid_at.eq(Some(now)),
                    orders::updated_at.eq(now),
                ))
                .execute(c)
                .unwrap();
        }
        Ok(())
    })
    .unwrap();
}

#[tokio::test]
async fn orders_export_as_streamed_csv_and_ship_in_batches_all_or_nothing() {
    let app = spawn_app();
    let m = merchant(&app, "csv_shop").await;
    let rival = merchant(&app, "csv_rival").await;
    let sku = product(&app, &m, "帆布鞋（2026 新款）", "", "59", 20).await[0];
    // A buyer whose recipient name looks like a spreadsheet formula.
    let b = buyers(&app, "csvb", 1).await.remove(0);
    b.submit(
        "/addresses",
        "/addresses",
        &[
            ("recipient", "=HYPERLINK(1)"),
            ("phone", "13900001111"),
            ("province", "上海市"),
            ("city", "上海市"),
            ("district", "浦东新区"),
            ("detail", "世纪大道 100 号"),
            ("make_default", "1"),
        ],
    )
    .await
    .assert_status(303);
    let mut nos = Vec::new();
    for _ in 0..2 {
        add_to_cart(&b, sku, 1).await.assert_status(303);
        let id = checkout_id(&checkout(&b).await);
        pay_checkout(&b, id).await.assert_status(303);
        nos.push(order_nos_of_checkout(&app, id)[0].clone());
    }
    let csv = m.get("/merchant/orders.csv?status=paid").await;
    csv.assert_status(200);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    let lines: Vec<&str> = csv.body.trim_start_matches('\u{feff}').lines().collect();
    assert!(lines[0].starts_with("order_no,created_at,status,buyer"));
    assert_eq!(lines.len(), 3);
    assert!(csv.body.contains(&nos[0]) && csv.body.contains(&nos[1]));
    assert!(csv.body.contains("'=HYPERLINK(1)"), "formula-safe cells");
    assert!(csv.body.contains("帆布鞋（2026 新款） x1"));
    // Another shop exports none of them; a buyer can not export.
    assert!(!rival
        .get("/merchant/orders.csv")
        .await
        .body
        .contains(&nos[0]));
    b.get("/merchant/orders.csv").await.assert_status(403);

    // Batch shipping: one bad row and nothing ships.
    let upload = |body: String| {
        let m = m.clone();
        async move {
            submit_multipart(
                &m,
                "/merchant/orders",
                "/merchant/orders/ship.csv",
                &[],
                &[("file", body.as_bytes())],
            )
            .await
        }
    };
    let r = upload(format!(
        "order_no,carrier,tracking_no\n{},sf,SF1000000001\n9999999999999999,sf,SF1000000002\n{},pigeon,SF1000000003\n",
        nos[0], nos[1]
    ))
    .await;
    r.assert_status(422);
    assert!(r.body.contains("本店没有这个订单") && r.body.contains("请选择快递公司"));
    assert!(
        r.body.contains("<td>3</td>") && r.body.contains("<td>4</td>"),
        "lines named"
    );
    assert_eq!(status_of(&app, &nos[0]), "paid", "nothing shipped");
    upload(format!(
        "order_no,carrier,tracking_no\n{},sf,SF1000000001\n{},zto,ZT1000000002\n",
        nos[0], nos[1]
    ))
    .await
    .assert_status(303);
    assert_eq!(status_of(&app, &nos[0]), "shipped");
    assert_eq!(status_of(&app, &nos[1]), "shipped");
    let shipped_mails: i64 = mail_outbox::table
        .filter(mail_outbox::kind.eq("order_shipped"))
        .count()
        .get_result(&mut *app.conn())
        .unwrap();
    assert_eq!(shipped_mails, 2);
    // Shipping them again is refused row by row.
    let r = upload(format!(
        "order_no,carrier,tracking_no\n{},sf,SF1000000001\n",
        nos[0]
    ))
    .await;
    r.assert_status(422);
    assert!(r.body.contains("不能发货"));

    // Many orders stream out in chunks, all of them.
    bulk_paid_orders(&app, "csv_shop", "csvb0", 2345);
    let all = m.get("/merchant/orders.csv").await;
    all.assert_status(200);
    let rows = all.body.lines().count() - 1;
    assert_eq!(rows, 2345 + 2);
}

#[tokio::test]
async fn unbuyable_cart_lines_are_flagged_and_left_out_of_the_checkout() {
    use haodian::db::schema::{products, shops};
    let app = spawn_app();
    let m = merchant(&app, "flag_shop").await;
    let m2 = merchant(&app, "flag_other").await;
    let keep = product(&app, &m, "保温杯（2026 新款）", "", "45", 5).await[0];
    let gone = product(&app, &m, "雨伞（2026 新款）", "", "30", 5).await[0];
    let closed = product(&app, &m2, "拖鞋（2026 新款）", "", "20", 5).await[0];
    let b = buyers(&app, "flag", 1).await.remove(0);
    for s in [keep, gone, closed] {
        add_to_cart(&b, s, 1).await.assert_status(303);
    }
    // The merchant delists one product; the other shop is suspended by the platform.
    let gone_product: i64 = skus::table
        .find(gone)
        .select(skus::product_id)
        .first(&mut *app.conn())
        .unwrap();
    m.submit(
        "/merchant/products",
        "/merchant/products/bulk",
        &[
            ("action", "delist"),
            (format!("id_{gone_product}").as_str(), "on"),
        ],
    )
    .await
    .assert_status(303);
    let other_shop: i64 = skus::table
        .find(closed)
        .select(skus::shop_id)
        .first(&mut *app.conn())
        .unwrap();
    diesel::update(shops::table.find(other_shop))
        .set(shops::status.eq("suspended"))
        .execute(&mut *app.conn())
        .unwrap();
    let cart = b.get("/cart").await;
    assert!(cart.body.contains("商品已下架"));
    assert!(cart.body.contains("店铺暂停营业"));
    assert!(
        cart.body.contains("id=\"cart-total\">¥45.00<"),
        "only the buyable line counts"
    );
    // Adding more of an unbuyable line is refused with a reason.
    add_to_cart(&b, gone, 1).await.assert_status(404);
    let r = add_to_cart(&b, closed, 1).await;
    r.assert_status(409);
    assert!(r.body.contains("暂停营业"));
    // A sold-out SKU is refused with its reason, and nothing changes in the cart.
    let empty = product(&app, &m, "售罄的伞（2026 新款）", "", "30", 0).await[0];
    let r = add_to_cart(&b, empty, 1).await;
    r.assert_status(409);
    assert!(r.body.contains("该规格已售罄"), "{}", r.body);
    let in_cart: i64 = haodian::db::schema::cart_items::table
        .filter(haodian::db::schema::cart_items::sku_id.eq(empty))
        .count()
        .get_result(&mut *app.conn())
        .unwrap();
    assert_eq!(in_cart, 0);
    // Checkout buys the buyable line; the others stay in the cart, flagged.
    let id = checkout_id(&checkout(&b).await);
    assert_eq!(order_nos_of_checkout(&app, id).len(), 1);
    assert_eq!(stock(&app, keep), 4);
    assert_eq!(stock(&app, gone), 5);
    assert_eq!(stock(&app, closed), 5);
    let cart = b.get("/cart").await;
    assert!(
        cart.body.contains("雨伞") && cart.body.contains("拖鞋") && !cart.body.contains("保温杯")
    );
    let listed: String = products::table
        .find(gone_product)
        .select(products::status)
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!(listed, "delisted");
    // A suspension for a number of days ends by itself: the shop sells again.
    diesel::update(shops::table.find(other_shop))
        .set(shops::restricted_until.eq(Some(app.clock.now() - chrono::Duration::hours(1))))
        .execute(&mut *app.conn())
        .unwrap();
    add_to_cart(&b, closed, 1).await.assert_status(303);
}

#[tokio::test]
async fn a_checkout_short_on_one_sku_names_that_line_and_takes_nothing() {
    let app = spawn_app();
    let m = merchant(&app, "short_shop").await;
    let skus = product(&app, &m, "棉袜（2026 新款）", "颜色: 白, 黑, 灰", "9", 5).await;
    let b = buyers(&app, "short", 1).await.remove(0);
    for s in &skus {
        add_to_cart(&b, *s, 2).await.assert_status(303);
    }
    let fields = checkout_fields(&b).await;
    // Between the checkout page and the POST, the middle SKU sells down to one.
    diesel::update(skus::table.find(skus[1]))
        .set(skus::stock.eq(1))
        .execute(&mut *app.conn())
        .unwrap();
    let r = post_fields(&b, "/checkout", &fields).await;
    r.assert_status(409);
    assert!(r.body.contains("库存不足"), "{}", r.body);
    let marked = |sku: i64| {
        r.body
            .contains(&format!("class=\"line line-problem\" id=\"line-{sku}\""))
    };
    assert!(marked(skus[1]), "the short line is named: {}", r.body);
    assert!(!marked(skus[0]) && !marked(skus[2]), "only that one");
    // Nothing was taken and no order exists.
    assert_eq!(
        skus.iter().map(|s| stock(&app, *s)).collect::<Vec<_>>(),
        vec![5, 1, 5]
    );
    let orders: i64 = haodian::db::schema::orders::table
        .count()
        .get_result(&mut *app.conn())
        .unwrap();
    assert_eq!(orders, 0);
}

#[tokio::test]
async fn a_checkout_to_another_buyers_address_or_none_writes_nothing_and_keeps_the_key() {
    use haodian::db::schema::{addresses, cart_items};
    let app = spawn_app();
    let m = merchant(&app, "addr_shop").await;
    let sku = product(&app, &m, "毛巾（2026 新款）", "", "12", 5).await[0];
    // Two buyers with an address each; the second one's is the one tried.
    let b = buyers(&app, "addr", 2).await.remove(0);
    add_to_cart(&b, sku, 2).await.assert_status(303);
    let fields = checkout_fields(&b).await;
    let other_id: i64 = users::table
        .filter(users::handle.eq("addr1"))
        .select(users::id)
        .first(&mut *app.conn())
        .unwrap();
    let other_address: i64 = addresses::table
        .filter(addresses::user_id.eq(other_id))
        .select(addresses::id)
        .first(&mut *app.conn())
        .unwrap();
    let with_address = |id: &str| -> Vec<(String, String)> {
        fields
            .iter()
            .map(|(k, v)| match k.as_str() {
                "address_id" => (k.clone(), id.to_string()),
                _ => (k.clone(), v.clone()),
            })
            .collect()
    };
    // Another buyer's address, and none at all: the form comes back, nothing is written.
    for fs in [
        with_address(&other_address.to_string()),
        fields
            .iter()
            .filter(|(k, _)| k != "address_id")
            .cloned()
            .collect(),
    ] {
        let r = post_fields(&b, "/checkout", &fs).await;
        r.assert_status(422);
        assert!(r.body.contains("请选择收货地址"), "{}", r.body);
        let placed: i64 = checkouts::table
            .count()
            .get_result(&mut *app.conn())
            .unwrap();
        assert_eq!(placed, 0, "no checkout key kept");
        let ordered: i64 = orders::table.count().get_result(&mut *app.conn()).unwrap();
        assert_eq!(ordered, 0);
        assert_eq!(stock(&app, sku), 5);
        let in_cart: i64 = cart_items::table
            .count()
            .get_result(&mut *app.conn())
            .unwrap();
        assert_eq!(in_cart, 1, "the cart is as it was");
    }
    // The same key with the buyer's own address then places the order.
    let r = post_fields(&b, "/checkout", &fields).await;
    r.assert_status(303);
    let id = checkout_id(&r);
    assert_eq!(order_nos_of_checkout(&app, id).len(), 1);
    assert_eq!(stock(&app, sku), 3);
}
