//! A real browser (headless Chromium through chromedriver) signs up, logs out, logs in and
//! switches the language. Without chromedriver on the machine the test fails when CI=true or
//! HAODIAN_REQUIRE_BROWSER=1, and otherwise says loudly that it did not run.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{ClientBuilder, Locator};

use crate::common::*;

fn chromedriver() -> Option<String> {
    ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .iter()
        .find(|p| std::path::Path::new(p).exists())
        .map(|p| p.to_string())
}

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn screenshot(c: &fantoccini::Client, name: &str) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("screens");
    let _ = std::fs::create_dir_all(&dir);
    if let Ok(png) = c.screenshot().await {
        let _ = std::fs::write(dir.join(format!("{name}.png")), png);
    }
}

/// A headless Chromium session through chromedriver, or None (with a loud note) when
/// chromedriver is missing and not required.
async fn browser(app: &TestApp) -> Option<(Driver, fantoccini::Client)> {
    let required = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
        || std::env::var("HAODIAN_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
    let Some(driver_bin) = chromedriver() else {
        assert!(!required, "chromedriver is required (CI / HAODIAN_REQUIRE_BROWSER) but not installed: apt-get install chromium chromium-driver");
        eprintln!("NOT RUN: browser test skipped, chromedriver not installed (apt-get install chromium chromium-driver)");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let driver = Driver(
        Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver"),
    );
    let profile = app.db.dir().join("chrome-profile");
    let caps: serde_json::Map<String, serde_json::Value> = serde_json::from_value(serde_json::json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                     "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--window-size=1280,900", format!("--user-data-dir={}", profile.display()), "--lang=zh-CN"],
            "prefs": { "intl.accept_languages": "zh-CN,zh" }
        }
    }))
    .unwrap();
    for _ in 0..50 {
        match ClientBuilder::native()
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => return Some((driver, c)),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    panic!("no chromedriver session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_signs_up_logs_in_and_switches_language() {
    let app = spawn_app();
    let Some((_driver, b)) = browser(&app).await else {
        return;
    };
    let result = async {
        b.goto(&format!("{}/signup", app.addr)).await?;
        b.find(Locator::Css("#email"))
            .await?
            .send_keys("browser@example.com")
            .await?;
        b.find(Locator::Css("#handle"))
            .await?
            .send_keys("browser_user")
            .await?;
        b.find(Locator::Css("#display_name"))
            .await?
            .send_keys("浏览器用户")
            .await?;
        b.find(Locator::Css("#password"))
            .await?
            .send_keys(PASSWORD)
            .await?;
        b.find(Locator::Css("#password_confirm"))
            .await?
            .send_keys(PASSWORD)
            .await?;
        screenshot(&b, "signup").await;
        b.find(Locator::Css("#signup-form button[type=submit]"))
            .await?
            .click()
            .await?;
        b.wait().for_element(Locator::Css("#logout")).await?;
        let body = b.find(Locator::Css("body")).await?.text().await?;
        assert!(
            body.contains("浏览器用户"),
            "signed in after sign-up: {body}"
        );
        assert!(body.contains("注册成功"), "{body}");
        screenshot(&b, "home-signed-in").await;

        b.find(Locator::Css("#logout")).await?.click().await?;
        b.wait()
            .for_element(Locator::Css("a[href='/signup']"))
            .await?;
        b.goto(&format!("{}/login", app.addr)).await?;
        b.find(Locator::Css("#email"))
            .await?
            .send_keys("browser@example.com")
            .await?;
        b.find(Locator::Css("#password"))
            .await?
            .send_keys(PASSWORD)
            .await?;
        b.find(Locator::Css("#login-form button[type=submit]"))
            .await?
            .click()
            .await?;
        b.wait().for_element(Locator::Css("#logout")).await?;
        assert!(b
            .find(Locator::Css("body"))
            .await?
            .text()
            .await?
            .contains("登录成功"));

        b.goto(&format!("{}/settings", app.addr)).await?;
        b.find(Locator::Css("#lang-switch")).await?.click().await?;
        b.wait()
            .for_element(Locator::XPath("//html[@lang='en']"))
            .await?;
        let body = b.find(Locator::Css("body")).await?.text().await?;
        assert!(
            body.contains("Settings") && body.contains("Log out"),
            "English after the switch: {body}"
        );
        assert_eq!(
            b.current_url().await?.path(),
            "/settings",
            "back on the same page"
        );
        screenshot(&b, "settings-en").await;
        Ok::<(), fantoccini::error::CmdError>(())
    }
    .await;
    let _ = b.close().await;
    result.expect("browser flow");
    // The switch was saved to the account: a fresh login in another browser speaks English.
    let c = app.client();
    let page = c.login("browser@example.com", PASSWORD).await;
    page.assert_status(303);
    assert!(c.get("/settings").await.body.contains("<html lang=\"en\">"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_merchant_lists_a_product_and_a_visitor_sees_it() {
    let app = spawn_app();
    app.user("shopkeeper", haodian::accounts::Role::Buyer);
    let Some((_driver, b)) = browser(&app).await else {
        return;
    };
    let result = async {
        b.goto(&format!("{}/login", app.addr)).await?;
        b.find(Locator::Css("#email"))
            .await?
            .send_keys("shopkeeper@example.com")
            .await?;
        b.find(Locator::Css("#password"))
            .await?
            .send_keys(PASSWORD)
            .await?;
        click_through(&b, "#login-form button[type=submit]").await?;
        b.wait().for_element(Locator::Css("#logout")).await?;
        // Open a shop.
        b.goto(&format!("{}/merchant", app.addr)).await?;
        click_through(&b, "#open-shop").await?;
        b.find(Locator::Css("#name"))
            .await?
            .send_keys("浏览器小店")
            .await?;
        b.find(Locator::Css("#slug"))
            .await?
            .send_keys("browser-shop")
            .await?;
        b.find(Locator::Css("#main_category_id"))
            .await?
            .select_by_label("服饰 · 保证金 ¥2000.00")
            .await?;
        click_through(&b, "#open-shop-form button[type=submit]").await?;
        b.wait().for_element(Locator::Css("#products-link")).await?;
        // Create a product with two SKUs and list it.
        click_through(&b, "#products-link").await?;
        click_through(&b, "#new-product").await?;
        b.find(Locator::Css("#title"))
            .await?
            .send_keys("浏览器上架的帆布包")
            .await?;
        b.find(Locator::Css("#category_id"))
            .await?
            .select_by_label("服饰")
            .await?;
        click_through(&b, "#product-form button[type=submit]").await?;
        b.wait().for_element(Locator::Css("#variants-text")).await?;
        b.find(Locator::Css("#variants-text"))
            .await?
            .send_keys("颜色: 米色, 黑色")
            .await?;
        click_through(&b, "#variants button[type=submit]").await?;
        b.wait().for_element(Locator::Css("#sku-form")).await?;
        for (i, input) in b
            .find_all(Locator::Css("#sku-form input[name$='_price']"))
            .await?
            .into_iter()
            .enumerate()
        {
            input.send_keys(if i == 0 { "79" } else { "89" }).await?;
        }
        for input in b
            .find_all(Locator::Css("#sku-form input[name$='_stock']"))
            .await?
        {
            input.clear().await?;
            input.send_keys("12").await?;
        }
        click_through(&b, "#sku-form button[type=submit]").await?;
        b.wait()
            .for_element(Locator::Css("#submit-listing"))
            .await?;
        click_through(&b, "#submit-listing").await?;
        b.wait()
            .for_element(Locator::Css("#product-status"))
            .await?;
        let status = b
            .find(Locator::Css("#product-status"))
            .await?
            .text()
            .await?;
        assert_eq!(status, "在售");
        screenshot(&b, "merchant-product").await;
        // A visitor (logged out) sees it on the storefront and the account profile.
        click_through(&b, "#logout").await?;
        b.wait()
            .for_element(Locator::Css("a[href='/signup']"))
            .await?;
        b.goto(&format!("{}/shops/browser-shop", app.addr)).await?;
        let body = b.find(Locator::Css("body")).await?.text().await?;
        assert!(
            body.contains("浏览器上架的帆布包") && body.contains("¥79.00 – ¥89.00"),
            "{body}"
        );
        screenshot(&b, "storefront").await;
        b.goto(&format!("{}/@shopkeeper", app.addr)).await?;
        assert!(b
            .find(Locator::Css("body"))
            .await?
            .text()
            .await?
            .contains("浏览器上架的帆布包"));
        click_through(&b, ".product-card").await?;
        let body = b.find(Locator::Css("body")).await?.text().await?;
        assert!(
            body.contains("米色") && body.contains("黑色") && body.contains("库存 12"),
            "{body}"
        );
        screenshot(&b, "product-page").await;
        Ok::<(), fantoccini::error::CmdError>(())
    }
    .await;
    let _ = b.close().await;
    result.expect("browser flow");
}

/// Clicks what navigates to another page and waits until the old page is gone, so nothing
/// read next can come from the page being left (a stale element under load otherwise).
async fn click_through(
    b: &fantoccini::Client,
    css: &str,
) -> Result<(), fantoccini::error::CmdError> {
    let old = b.find(Locator::Css("html")).await?;
    b.find(Locator::Css(css)).await?.click().await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while old.tag_name().await.is_ok() {
        if std::time::Instant::now() > deadline {
            panic!("clicking {css} did not leave the page");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// The text of the whole page.
async fn page_text(b: &fantoccini::Client) -> Result<String, fantoccini::error::CmdError> {
    b.find(Locator::Css("body")).await?.text().await
}

/// Waits until the element `css` shows exactly `text` (a page load after a form post).
async fn wait_text(
    b: &fantoccini::Client,
    css: &str,
    text: &str,
) -> Result<(), fantoccini::error::CmdError> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(e) = b.find(Locator::Css(css)).await {
            if e.text().await.is_ok_and(|t| t.trim() == text) {
                return Ok(());
            }
        }
        if std::time::Instant::now() > deadline {
            let seen = match b.find(Locator::Css(css)).await {
                Ok(e) => e.text().await.unwrap_or_default(),
                Err(_) => "(no such element)".into(),
            };
            panic!("{css} never read {text:?}; it reads {seen:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Logs the browser in through the form and waits for the signed-in page.
async fn browser_login(
    b: &fantoccini::Client,
    addr: &str,
    email: &str,
) -> Result<(), fantoccini::error::CmdError> {
    b.goto(&format!("{addr}/login")).await?;
    b.find(Locator::Css("#email"))
        .await?
        .send_keys(email)
        .await?;
    b.find(Locator::Css("#password"))
        .await?
        .send_keys(PASSWORD)
        .await?;
    click_through(b, "#login-form button[type=submit]").await?;
    b.wait().for_element(Locator::Css("#logout")).await?;
    Ok(())
}

/// Logs the browser out with the header's button and waits for the visitor's page.
async fn browser_logout(b: &fantoccini::Client) -> Result<(), fantoccini::error::CmdError> {
    click_through(b, "#logout").await?;
    b.wait()
        .for_element(Locator::Css("a[href='/signup']"))
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_buyer_orders_pays_and_confirms_after_the_merchant_ships() {
    use diesel::prelude::*;
    use haodian::db::schema::skus;

    let app = spawn_app();
    let m = crate::orders::merchant(&app, "browser_seller").await;
    let sku_ids =
        crate::orders::product(&app, &m, "浏览器纯棉T恤", "颜色: 白, 黑", "12.50", 5).await;
    assert_eq!(sku_ids.len(), 2);
    let product_id: i64 = skus::table
        .find(sku_ids[0])
        .select(skus::product_id)
        .first(&mut *app.conn())
        .unwrap();
    let buyer = app.user("browser_buyer", haodian::accounts::Role::Buyer);
    let Some((_driver, b)) = browser(&app).await else {
        return;
    };
    let addr = app.addr.clone();
    let result = async {
        // The buyer puts one of each colour into the cart from the product page.
        browser_login(&b, &addr, &buyer).await?;
        let product_page = format!("{addr}/products/{product_id}");
        b.goto(&product_page).await?;
        b.wait().for_element(Locator::Css("#add-to-cart")).await?;
        let body = page_text(&b).await?;
        assert!(
            body.contains("浏览器纯棉T恤") && body.contains("白") && body.contains("黑"),
            "{body}"
        );
        screenshot(&b, "order-product").await;
        for (i, sku) in sku_ids.iter().enumerate() {
            if i > 0 {
                b.back().await?;
                b.wait().for_element(Locator::Css("#add-to-cart")).await?;
            }
            b.find(Locator::Css(&format!("input[name='sku'][value='{sku}']")))
                .await?
                .click()
                .await?;
            b.find(Locator::Css("#add-to-cart")).await?.click().await?;
            b.wait().for_element(Locator::Css("#to-checkout")).await?;
            let body = page_text(&b).await?;
            assert!(body.contains("已加入购物车"), "{body}");
        }
        assert_eq!(b.current_url().await?.path(), "/cart");
        let body = page_text(&b).await?;
        assert!(
            body.contains("浏览器纯棉T恤") && body.contains("白") && body.contains("黑"),
            "{body}"
        );
        for (sku, colour) in sku_ids.iter().zip(["白", "黑"]) {
            let line = b
                .find(Locator::Css(&format!("#line-{sku}")))
                .await?
                .text()
                .await?;
            assert!(
                line.contains("浏览器纯棉T恤") && line.contains(colour) && line.contains("¥12.50"),
                "cart line of SKU {sku}: {line}"
            );
        }
        assert_eq!(
            b.find(Locator::Css("#cart-total")).await?.text().await?,
            "¥25.00"
        );
        screenshot(&b, "order-cart").await;

        // Checkout: no address yet, so one is added on the way.
        b.find(Locator::Css("#to-checkout")).await?.click().await?;
        b.wait().for_element(Locator::Css("#add-address")).await?;
        let body = page_text(&b).await?;
        assert!(
            body.contains("确认订单") && body.contains("还没有收货地址"),
            "{body}"
        );
        assert!(
            b.find(Locator::Css("#place-order"))
                .await?
                .attr("disabled")
                .await?
                .is_some(),
            "no address, no order"
        );
        b.find(Locator::Css("#add-address")).await?.click().await?;
        b.wait().for_element(Locator::Css("#save-address")).await?;
        for (id, value) in [
            ("#recipient", "张三"),
            ("#phone", "13812345678"),
            ("#province", "浙江省"),
            ("#city", "杭州市"),
            ("#district", "西湖区"),
            ("#detail", "文三路 100 号 2 单元 301"),
        ] {
            b.find(Locator::Css(id)).await?.send_keys(value).await?;
        }
        screenshot(&b, "order-address").await;
        b.find(Locator::Css("#save-address")).await?.click().await?;
        b.wait()
            .for_element(Locator::Css("input[name='address_id']"))
            .await?;
        assert_eq!(b.current_url().await?.path(), "/checkout");
        let body = page_text(&b).await?;
        assert!(
            body.contains("地址已保存") && body.contains("张三") && body.contains("文三路"),
            "{body}"
        );
        assert!(body.contains("¥25.00"), "{body}");
        screenshot(&b, "order-checkout").await;

        // Place the order and pay with the simulated provider.
        b.find(Locator::Css("#place-order")).await?.click().await?;
        b.wait().for_element(Locator::Css("#pay-now")).await?;
        assert!(b.current_url().await?.path().starts_with("/checkout/"));
        let body = page_text(&b).await?;
        assert!(
            body.contains("订单已提交") && body.contains("待付款") && body.contains("¥25.00"),
            "{body}"
        );
        screenshot(&b, "order-placed").await;
        b.find(Locator::Css("#pay-now")).await?.click().await?;
        b.wait().for_element(Locator::Css("#sim-pay")).await?;
        assert!(b.current_url().await?.path().starts_with("/pay/sim/"));
        assert_eq!(
            b.find(Locator::Css("#pay-amount")).await?.text().await?,
            "¥25.00"
        );
        screenshot(&b, "order-sim-pay").await;
        b.find(Locator::Css("#sim-pay")).await?.click().await?;
        b.wait().for_element(Locator::Css("#order-status")).await?;
        let path = b.current_url().await?.path().to_string();
        let order_no = path
            .strip_prefix("/orders/")
            .unwrap_or_else(|| panic!("on the order page after paying: {path}"))
            .to_string();
        wait_text(&b, "#order-status", "待发货").await?;
        let body = page_text(&b).await?;
        assert!(
            body.contains("支付成功") && body.contains(&order_no) && body.contains("买家已付款"),
            "{body}"
        );
        screenshot(&b, "order-paid").await;

        // The merchant ships it.
        browser_logout(&b).await?;
        browser_login(&b, &addr, "browser_seller@example.com").await?;
        b.goto(&format!("{addr}/merchant/orders/{order_no}"))
            .await?;
        b.wait().for_element(Locator::Css("#ship")).await?;
        wait_text(&b, "#order-status", "待发货").await?;
        let body = page_text(&b).await?;
        assert!(
            body.contains("@browser_buyer") && body.contains("张三"),
            "{body}"
        );
        b.find(Locator::Css("#carrier"))
            .await?
            .select_by_label("顺丰速运")
            .await?;
        b.find(Locator::Css("#tracking_no"))
            .await?
            .send_keys("SF1234567890")
            .await?;
        screenshot(&b, "order-ship").await;
        b.find(Locator::Css("#ship")).await?.click().await?;
        wait_text(&b, "#order-status", "已发货").await?;
        let body = page_text(&b).await?;
        assert!(
            body.contains("已发货，买家会收到通知") && body.contains("SF1234567890"),
            "{body}"
        );
        assert!(
            b.find(Locator::Css("#ship")).await.is_err(),
            "no second shipping form"
        );
        screenshot(&b, "order-shipped").await;

        // The buyer confirms receipt.
        browser_logout(&b).await?;
        browser_login(&b, &addr, &buyer).await?;
        b.goto(&format!("{addr}/orders/{order_no}")).await?;
        b.wait()
            .for_element(Locator::Css("#confirm-receipt"))
            .await?;
        wait_text(&b, "#order-status", "已发货").await?;
        let body = page_text(&b).await?;
        assert!(
            body.contains("顺丰速运") && body.contains("SF1234567890"),
            "{body}"
        );
        b.find(Locator::Css("#confirm-receipt"))
            .await?
            .click()
            .await?;
        wait_text(&b, "#order-status", "已完成").await?;
        let body = page_text(&b).await?;
        assert!(
            body.contains("已确认收货，交易完成") && body.contains("买家确认收货"),
            "{body}"
        );
        assert!(
            b.find(Locator::Css("#confirm-receipt")).await.is_err(),
            "confirmed once"
        );
        screenshot(&b, "order-completed").await;
        Ok::<(), fantoccini::error::CmdError>(())
    }
    .await;
    let _ = b.close().await;
    result.expect("browser flow");
    // The stock went down by one of each colour.
    assert_eq!(crate::orders::stock(&app, sku_ids[0]), 4);
    assert_eq!(crate::orders::stock(&app, sku_ids[1]), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_moderator_penalizes_merchant_appeals_moderator_revokes_shop_is_back() {
    use diesel::prelude::*;
    use haodian::db::schema::{products, shops, skus, violation_types};

    let app = spawn_app();
    let m = crate::orders::merchant(&app, "bg_shop").await;
    let sku = crate::orders::product(&app, &m, "浏览器羊毛大衣", "", "399", 3).await[0];
    let product_id: i64 = skus::table
        .find(sku)
        .select(skus::product_id)
        .first(&mut *app.conn())
        .unwrap();
    let counterfeit: i64 = violation_types::table
        .filter(violation_types::code.eq("counterfeit"))
        .filter(violation_types::active.eq(true))
        .select(violation_types::id)
        .first(&mut *app.conn())
        .unwrap();
    let moderator = app.user("bg_mod", haodian::accounts::Role::Moderator);
    let merchant = "bg_shop@example.com".to_string();
    let evidence = app.db.dir().join("evidence.png");
    std::fs::write(&evidence, crate::flows::PNG).unwrap();
    let status = |app: &TestApp| -> String {
        shops::table
            .filter(shops::slug.eq("bg-shop"))
            .select(shops::status)
            .first(&mut *app.conn())
            .unwrap()
    };
    let Some((_driver, b)) = browser(&app).await else {
        return;
    };
    let addr = app.addr.clone();
    let result = async {
        // The moderator records a serious violation (24 points: crosses 12 and 24).
        browser_login(&b, &addr, &moderator).await?;
        b.goto(&format!("{addr}/admin/violations/new?shop=bg-shop"))
            .await?;
        b.wait().for_element(Locator::Css("#record-form")).await?;
        b.find(Locator::Css("#type_id"))
            .await?
            .select_by_value(&counterfeit.to_string())
            .await?;
        b.find(Locator::Css("#product_id"))
            .await?
            .send_keys(&product_id.to_string())
            .await?;
        b.find(Locator::Css("#description"))
            .await?
            .send_keys("神秘买家收货鉴定为假冒品牌，鉴定报告见附件。")
            .await?;
        b.find(Locator::Css("#photos"))
            .await?
            .send_keys(&evidence.display().to_string())
            .await?;
        screenshot(&b, "gov-record").await;
        click_through(&b, "#submit-violation").await?;
        b.wait().for_element(Locator::Css("#violations")).await?;
        let body = page_text(&b).await?;
        assert!(
            body.contains("出售假冒商品") && body.contains("限制经营 14 天"),
            "{body}"
        );
        browser_logout(&b).await?;
        assert_eq!(status(&app), "restricted");

        // The merchant sees the penalty and appeals.
        browser_login(&b, &addr, &merchant).await?;
        b.goto(&format!("{addr}/merchant/violations")).await?;
        b.wait().for_element(Locator::Css("#standing")).await?;
        let body = page_text(&b).await?;
        assert!(
            body.contains("出售假冒商品") && body.contains("不能发布新商品"),
            "{body}"
        );
        screenshot(&b, "gov-merchant").await;
        click_through(&b, "#violations a[href^='/merchant/violations/']").await?;
        b.wait().for_element(Locator::Css("#appeal-form")).await?;
        b.find(Locator::Css("#body"))
            .await?
            .send_keys("该大衣为自有品牌，附品牌注册证与进货发票，并非假冒。")
            .await?;
        click_through(&b, "#submit-appeal").await?;
        wait_text(&b, "#appeal-status", "待处理").await?;
        browser_logout(&b).await?;

        // The moderator revokes it from the appeals queue.
        browser_login(&b, &addr, &moderator).await?;
        b.goto(&format!("{addr}/admin/appeals")).await?;
        b.wait().for_element(Locator::Css("#appeals")).await?;
        click_through(&b, "#appeals a[href^='/admin/appeals/']").await?;
        b.wait().for_element(Locator::Css("#decide")).await?;
        let body = page_text(&b).await?;
        assert!(
            body.contains("品牌注册证") && body.contains("鉴定报告"),
            "{body}"
        );
        screenshot(&b, "gov-appeal").await;
        b.find(Locator::Css("#reason"))
            .await?
            .send_keys("品牌注册证与发票真实，撤销违规。")
            .await?;
        click_through(&b, "#revoke").await?;
        b.wait().for_element(Locator::Css("#no-appeals")).await?;
        browser_logout(&b).await?;

        // The shop is back: active, and its product listed again.
        browser_login(&b, &addr, &merchant).await?;
        b.goto(&format!("{addr}/merchant/violations")).await?;
        wait_text(&b, "#shop-status", "正常").await?;
        Ok::<(), fantoccini::error::CmdError>(())
    }
    .await;
    let _ = b.close().await;
    result.expect("browser flow");
    assert_eq!(status(&app), "active");
    let listed: String = products::table
        .find(product_id)
        .select(products::status)
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!(listed, "listed");
}
