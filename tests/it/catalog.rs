//! Catalog and listing review: products, the SKU grid, every listing outcome, moderators'
//! decisions, what buyers see, and the cross-shop (IDOR) cases.

use crate::common::*;
use diesel::prelude::*;
use haodian::accounts::Role;
use haodian::db::schema::{audit_log, mail_outbox, products, shops, skus};

fn category_id(app: &TestApp, slug: &str) -> String {
    use haodian::db::schema::categories;
    categories::table
        .filter(categories::slug.eq(slug))
        .select(categories::id)
        .first::<i64>(&mut *app.conn())
        .unwrap()
        .to_string()
}

/// A logged-in owner of a fresh individual apparel shop.
async fn merchant(app: &TestApp, handle: &str, slug: &str) -> Client {
    let c = app.logged_in(handle, Role::Buyer).await;
    let cat = category_id(app, "apparel");
    submit_multipart(
        &c,
        "/",
        "/merchant/shop/open",
        &[
            ("name", &format!("{handle} 的店")),
            ("slug", slug),
            ("main_category_id", &cat),
            ("entity_type", "individual"),
        ],
        &[],
    )
    .await
    .assert_status(303);
    c
}

/// Creates a draft and returns its id.
async fn draft(app: &TestApp, c: &Client, title: &str, description: &str, category: &str) -> i64 {
    let cat = category_id(app, category);
    let r = c
        .submit(
            "/merchant/products/new",
            "/merchant/products/new",
            &[
                ("title", title),
                ("subtitle", ""),
                ("description", description),
                ("attributes", "产地: 杭州"),
                ("category_id", &cat),
            ],
        )
        .await;
    r.assert_status(303);
    r.location()
        .trim_start_matches("/merchant/products/")
        .parse()
        .unwrap()
}

fn sku_ids(app: &TestApp, product: i64) -> Vec<i64> {
    skus::table
        .filter(skus::product_id.eq(product))
        .order(skus::position)
        .select(skus::id)
        .load(&mut *app.conn())
        .unwrap()
}

/// Prices every SKU of a product (price, list price, stock).
async fn price_all(
    app: &TestApp,
    c: &Client,
    product: i64,
    price: &str,
    list: &str,
    stock: &str,
) -> Resp {
    let page = format!("/merchant/products/{product}");
    let ids = sku_ids(app, product);
    let mut fields: Vec<(String, String)> = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        fields.push((format!("sku_{id}_code"), format!("C{product}-{i}")));
        fields.push((format!("sku_{id}_price"), price.into()));
        fields.push((format!("sku_{id}_list_price"), list.into()));
        fields.push((format!("sku_{id}_stock"), stock.into()));
    }
    let refs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    c.submit(&page, &format!("/merchant/products/{product}/skus"), &refs)
        .await
}

async fn submit_listing(c: &Client, product: i64) -> Resp {
    c.submit(
        &format!("/merchant/products/{product}"),
        &format!("/merchant/products/{product}/submit"),
        &[],
    )
    .await
}

fn status(app: &TestApp, product: i64) -> String {
    products::table
        .find(product)
        .select(products::status)
        .first(&mut *app.conn())
        .unwrap()
}

#[tokio::test]
async fn a_clean_product_lists_and_buyers_see_it_everywhere() {
    let app = spawn_app();
    let c = merchant(&app, "linen", "linen-shop").await;
    let id = draft(
        &app,
        &c,
        "亚麻宽松衬衫",
        "透气亚麻\n<b>不是HTML</b>",
        "apparel-women",
    )
    .await;
    assert_eq!(status(&app, id), "draft");
    // Not public before listing.
    let anon = app.client();
    anon.get(&format!("/products/{id}"))
        .await
        .assert_status(404);
    // Two colours × two sizes → four SKUs.
    c.submit(
        &format!("/merchant/products/{id}"),
        &format!("/merchant/products/{id}/variants"),
        &[("variants", "颜色: 米白, 雾蓝\n尺码: M, L")],
    )
    .await
    .assert_status(303);
    assert_eq!(sku_ids(&app, id).len(), 4);
    price_all(&app, &c, id, "199", "259", "20")
        .await
        .assert_status(303);
    let r = submit_listing(&c, id).await;
    r.assert_status(303);
    assert_eq!(status(&app, id), "listed");
    assert!(c
        .get(&format!("/merchant/products/{id}"))
        .await
        .body
        .contains("检查通过"));
    let page = anon.get(&format!("/products/{id}")).await;
    page.assert_status(200);
    assert!(
        page.body.contains("亚麻宽松衬衫")
            && page.body.contains("米白 / M")
            && page.body.contains("¥199.00")
    );
    assert!(
        page.body.contains("&lt;b&gt;不是HTML&lt;/b&gt;") || page.body.contains("&#60;b&#62;"),
        "description escaped"
    );
    let store = anon.get("/shops/linen-shop").await;
    assert!(store.body.contains(&format!("href=\"/products/{id}\"")));
    assert!(
        anon.get("/shops/linen-shop?q=衬衫")
            .await
            .body
            .contains("亚麻宽松衬衫"),
        "in-shop search"
    );
    assert!(anon
        .get("/shops/linen-shop?q=裤子")
        .await
        .body
        .contains("没有找到匹配的商品"));
    assert!(
        anon.get("/@linen")
            .await
            .body
            .contains(&format!("href=\"/products/{id}\"")),
        "the official account's profile shows it"
    );
    // The check was recorded with its rule-set version.
    use haodian::db::schema::listing_checks as lc;
    let (version, outcome): (i64, String) = lc::table
        .filter(lc::product_id.eq(id))
        .select((lc::rule_set_id, lc::outcome))
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!((version, outcome.as_str()), (1, "listed"));
}

#[tokio::test]
async fn blocked_terms_need_changes_with_the_reason_by_the_field() {
    let app = spawn_app();
    let c = merchant(&app, "bold", "bold-shop").await;
    let id = draft(&app, &c, "全网最佳羊毛大衣", "保暖", "apparel").await;
    price_all(&app, &c, id, "599", "", "5")
        .await
        .assert_status(303);
    submit_listing(&c, id).await.assert_status(303);
    assert_eq!(status(&app, id), "needs_changes");
    let page = c.get(&format!("/merchant/products/{id}")).await;
    assert!(
        page.body.contains("含有违禁或需审核的用语「最佳」"),
        "reason shown"
    );
    assert!(
        page.body.contains("《广告法》第九条第三项"),
        "legal basis shown"
    );
    assert!(!app
        .client()
        .get("/shops/bold-shop")
        .await
        .body
        .contains(&format!("/products/{id}")));
    // Fix and resubmit.
    let cat = category_id(&app, "apparel");
    c.submit(
        &format!("/merchant/products/{id}"),
        &format!("/merchant/products/{id}"),
        &[
            ("title", "羊毛双面大衣"),
            ("description", "保暖"),
            ("category_id", &cat),
        ],
    )
    .await
    .assert_status(303);
    submit_listing(&c, id).await.assert_status(303);
    assert_eq!(status(&app, id), "listed");
    // An edit of a listed product is checked again at once.
    c.submit(
        &format!("/merchant/products/{id}"),
        &format!("/merchant/products/{id}"),
        &[
            ("title", "羊毛大衣 NO.1 之选"),
            ("description", "保暖"),
            ("category_id", &cat),
        ],
    )
    .await
    .assert_status(303);
    assert_eq!(status(&app, id), "needs_changes");
    app.client()
        .get(&format!("/products/{id}"))
        .await
        .assert_status(404);
}

#[tokio::test]
async fn price_and_qualification_rules_block_listing() {
    let app = spawn_app();
    let c = merchant(&app, "pricey", "pricey-shop").await;
    let id = draft(&app, &c, "真丝围巾礼盒", "", "apparel").await;
    price_all(&app, &c, id, "300", "200", "1")
        .await
        .assert_status(303);
    submit_listing(&c, id).await;
    assert_eq!(status(&app, id), "needs_changes");
    assert!(c
        .get(&format!("/merchant/products/{id}"))
        .await
        .body
        .contains("划线价不能低于售价"));
    price_all(&app, &c, id, "5", "100", "1")
        .await
        .assert_status(303);
    submit_listing(&c, id).await;
    assert!(c
        .get(&format!("/merchant/products/{id}"))
        .await
        .body
        .contains("折扣低于平台允许的下限"));
    // An apparel shop can not list food without a food licence.
    let tea = draft(&app, &c, "武夷岩茶大红袍", "", "food-tea").await;
    price_all(&app, &c, tea, "88", "", "10")
        .await
        .assert_status(303);
    submit_listing(&c, tea).await;
    assert_eq!(status(&app, tea), "needs_changes");
    assert!(c
        .get(&format!("/merchant/products/{tea}"))
        .await
        .body
        .contains("店铺缺少该类目所需资质"));
    // Unpriced SKUs never list.
    let bare = draft(&app, &c, "未定价的商品", "", "apparel").await;
    submit_listing(&c, bare).await;
    assert!(c
        .get(&format!("/merchant/products/{bare}"))
        .await
        .body
        .contains("售价必须大于 0"));
}

#[tokio::test]
async fn the_sku_grid_writes_nothing_when_any_row_is_bad() {
    let app = spawn_app();
    let c = merchant(&app, "gridder", "grid-shop").await;
    let id = draft(&app, &c, "纯棉短袖T恤", "", "apparel").await;
    c.submit(
        &format!("/merchant/products/{id}"),
        &format!("/merchant/products/{id}/variants"),
        &[("variants", "颜色: 白, 黑, 白")],
    )
    .await
    .assert_status(422);
    c.submit(
        &format!("/merchant/products/{id}"),
        &format!("/merchant/products/{id}/variants"),
        &[("variants", "颜色: 白, 黑")],
    )
    .await
    .assert_status(303);
    let ids = sku_ids(&app, id);
    let before: Vec<(i64, i64, String)> = skus::table
        .filter(skus::product_id.eq(id))
        .order(skus::id)
        .select((skus::price_fen, skus::stock, skus::code))
        .load(&mut *app.conn())
        .unwrap();
    let (a, b) = (ids[0].to_string(), ids[1].to_string());
    let r = c
        .submit(
            &format!("/merchant/products/{id}"),
            &format!("/merchant/products/{id}/skus"),
            &[
                (format!("sku_{a}_code").as_str(), "WHITE"),
                (format!("sku_{a}_price").as_str(), "59.90"),
                (format!("sku_{a}_list_price").as_str(), ""),
                (format!("sku_{a}_stock").as_str(), "10"),
                (format!("sku_{b}_code").as_str(), "BLACK"),
                (format!("sku_{b}_price").as_str(), "abc"),
                (format!("sku_{b}_list_price").as_str(), ""),
                (format!("sku_{b}_stock").as_str(), "-3"),
            ],
        )
        .await;
    r.assert_status(422);
    assert!(r.body.contains("请输入金额") && r.body.contains("库存为 0–10000000 的整数"));
    assert!(
        r.body.contains("value=\"abc\""),
        "what was typed is shown again"
    );
    let after: Vec<(i64, i64, String)> = skus::table
        .filter(skus::product_id.eq(id))
        .order(skus::id)
        .select((skus::price_fen, skus::stock, skus::code))
        .load(&mut *app.conn())
        .unwrap();
    assert_eq!(before, after, "the good row was not written either");
    // Duplicate codes are refused; then a good grid saves.
    let save_codes = |code_a: String, code_b: String| {
        let c = c.clone();
        let (a, b) = (a.clone(), b.clone());
        async move {
            let mut fields = Vec::new();
            for (sku, code) in [(&a, code_a), (&b, code_b)] {
                fields.push((format!("sku_{sku}_code"), code));
                fields.push((format!("sku_{sku}_price"), "59.9".to_string()));
                fields.push((format!("sku_{sku}_list_price"), String::new()));
                fields.push((format!("sku_{sku}_stock"), "10".to_string()));
            }
            let refs: Vec<(&str, &str)> = fields
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            c.submit(
                &format!("/merchant/products/{id}"),
                &format!("/merchant/products/{id}/skus"),
                &refs,
            )
            .await
        }
    };
    save_codes("SAME".into(), "SAME".into())
        .await
        .assert_status(422);
    price_all(&app, &c, id, "59.9", "", "10")
        .await
        .assert_status(303);
    let prices: Vec<i64> = skus::table
        .filter(skus::product_id.eq(id))
        .select(skus::price_fen)
        .load(&mut *app.conn())
        .unwrap();
    assert_eq!(prices, vec![5990, 5990]);
    let range: (Option<i64>, Option<i64>) = products::table
        .find(id)
        .select((products::price_min, products::price_max))
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!(range, (Some(5990), Some(5990)));
    // Two SKUs swap their codes in one save (each code is held by the other SKU until then).
    let codes = |app: &TestApp| -> Vec<String> {
        skus::table
            .filter(skus::product_id.eq(id))
            .order(skus::id)
            .select(skus::code)
            .load(&mut *app.conn())
            .unwrap()
    };
    let old = codes(&app);
    save_codes(old[1].clone(), old[0].clone())
        .await
        .assert_status(303);
    assert_eq!(codes(&app), vec![old[1].clone(), old[0].clone()]);
}

#[tokio::test]
async fn manual_review_then_moderator_decisions_with_audit_and_email() {
    let app = spawn_app();
    let c = merchant(&app, "forever", "forever-shop").await;
    let id = draft(&app, &c, "永久保色真丝裙", "真丝", "apparel").await;
    price_all(&app, &c, id, "399", "", "3")
        .await
        .assert_status(303);
    submit_listing(&c, id).await.assert_status(303);
    assert_eq!(status(&app, id), "pending_review");
    // Pending products can not be edited or resubmitted.
    submit_listing(&c, id).await.assert_status(409);
    let moderator = app.logged_in("mod_review", Role::Moderator).await;
    let queue = moderator.get("/admin/review").await;
    queue.assert_status(200);
    assert!(
        queue.body.contains("<mark>永久</mark>保色真丝裙"),
        "hit highlighted in the text"
    );
    // A buyer can not reach the queue or decide.
    let buyer = app.logged_in("nosy", Role::Buyer).await;
    buyer.get("/admin/review").await.assert_status(403);
    let token = buyer.csrf().await;
    buyer
        .post(
            &format!("/admin/products/{id}/approve"),
            &[("csrf_token", &token)],
        )
        .await
        .assert_status(403);
    // Approve.
    moderator
        .submit(
            "/admin/review",
            &format!("/admin/products/{id}/approve"),
            &[("back", "/admin/review")],
        )
        .await
        .assert_status(303);
    assert_eq!(status(&app, id), "listed");
    // Deciding twice is a clear conflict.
    let r = moderator
        .submit(
            "/admin/review",
            &format!("/admin/products/{id}/approve"),
            &[],
        )
        .await;
    r.assert_status(409);
    assert!(r.body.contains("商品状态已被他人修改"));
    // The platform delists with a reason: gone from the storefront and the product page at once.
    moderator
        .submit(
            "/admin/products",
            &format!("/admin/products/{id}/delist"),
            &[("reason", "x")],
        )
        .await
        .assert_status(303);
    assert_eq!(status(&app, id), "listed", "a reason is required");
    moderator
        .submit(
            "/admin/products",
            &format!("/admin/products/{id}/delist"),
            &[("reason", "商品图片与实物不符")],
        )
        .await
        .assert_status(303);
    assert_eq!(status(&app, id), "delisted");
    let anon = app.client();
    anon.get(&format!("/products/{id}"))
        .await
        .assert_status(404);
    assert!(!anon
        .get("/shops/forever-shop")
        .await
        .body
        .contains(&format!("/products/{id}")));
    let mine = c.get("/merchant/products").await;
    assert!(
        mine.body.contains("商品图片与实物不符"),
        "the merchant sees the reason"
    );
    // Resubmitting a platform-delisted product goes back to a moderator.
    let cat = category_id(&app, "apparel");
    c.submit(
        &format!("/merchant/products/{id}"),
        &format!("/merchant/products/{id}"),
        &[
            ("title", "真丝连衣裙"),
            ("description", "真丝"),
            ("category_id", &cat),
        ],
    )
    .await
    .assert_status(303);
    submit_listing(&c, id).await.assert_status(303);
    assert_eq!(status(&app, id), "pending_review");
    moderator
        .submit(
            "/admin/review",
            &format!("/admin/products/{id}/reject"),
            &[("reason", "请补充面料检测报告")],
        )
        .await
        .assert_status(303);
    assert_eq!(status(&app, id), "rejected");
    // Every decision is audited with the shop, and the merchant got an email each time.
    let actions: Vec<String> = audit_log::table
        .filter(audit_log::subject_type.eq("product"))
        .order(audit_log::id)
        .select(audit_log::action)
        .load(&mut *app.conn())
        .unwrap();
    assert_eq!(
        actions,
        vec!["product.approve", "product.delist", "product.reject"]
    );
    let shop_ids: Vec<Option<i64>> = audit_log::table
        .filter(audit_log::subject_type.eq("product"))
        .select(audit_log::shop_id)
        .load(&mut *app.conn())
        .unwrap();
    assert!(shop_ids.iter().all(Option::is_some));
    let mails: Vec<String> = mail_outbox::table
        .filter(mail_outbox::kind.eq("product_decision"))
        .order(mail_outbox::id)
        .select(mail_outbox::body_text)
        .load(&mut *app.conn())
        .unwrap();
    assert_eq!(mails.len(), 3);
    assert!(mails[2].contains("请补充面料检测报告"));
}

#[tokio::test]
async fn merchants_never_reach_another_shops_products() {
    let app = spawn_app();
    let a = merchant(&app, "alpha", "alpha-shop").await;
    let b = merchant(&app, "bravo", "bravo-shop").await;
    let id = draft(&app, &a, "Alpha 专属商品", "", "apparel").await;
    price_all(&app, &a, id, "10", "", "1").await;
    submit_listing(&a, id).await.assert_status(303);
    assert_eq!(status(&app, id), "listed");
    let sku = sku_ids(&app, id)[0];
    b.get(&format!("/merchant/products/{id}"))
        .await
        .assert_status(404);
    let cat = category_id(&app, "apparel");
    for (path, fields) in [
        (
            format!("/merchant/products/{id}"),
            vec![("title", "被篡改的标题"), ("category_id", cat.as_str())],
        ),
        (
            format!("/merchant/products/{id}/variants"),
            vec![("variants", "颜色: 红")],
        ),
        (format!("/merchant/products/{id}/submit"), vec![]),
    ] {
        b.submit("/merchant/products", &path, &fields)
            .await
            .assert_status(404);
    }
    let sku_s = sku.to_string();
    let fields = [
        (format!("sku_{sku_s}_code"), "X"),
        (format!("sku_{sku_s}_price"), "0.01"),
        (format!("sku_{sku_s}_list_price"), ""),
        (format!("sku_{sku_s}_stock"), "0"),
    ];
    let refs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    b.submit(
        "/merchant/products",
        &format!("/merchant/products/{id}/skus"),
        &refs,
    )
    .await
    .assert_status(404);
    b.submit(
        "/merchant/products",
        "/merchant/products/bulk",
        &[("action", "delist"), (format!("id_{id}").as_str(), "on")],
    )
    .await
    .assert_status(303);
    assert_eq!(
        status(&app, id),
        "listed",
        "bulk delist ignores other shops' ids"
    );
    assert!(!b
        .get("/merchant/products")
        .await
        .body
        .contains("Alpha 专属商品"));
    let title: String = products::table
        .find(id)
        .select(products::title)
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!(title, "Alpha 专属商品");
    let price: i64 = skus::table
        .find(sku)
        .select(skus::price_fen)
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!(price, 1000);
    // The owner's own bulk delist and relist work.
    a.submit(
        "/merchant/products",
        "/merchant/products/bulk",
        &[("action", "delist"), (format!("id_{id}").as_str(), "on")],
    )
    .await
    .assert_status(303);
    assert_eq!(status(&app, id), "delisted");
    a.submit(
        "/merchant/products",
        "/merchant/products/bulk",
        &[("action", "relist"), (format!("id_{id}").as_str(), "on")],
    )
    .await
    .assert_status(303);
    assert_eq!(status(&app, id), "listed");
}

#[tokio::test]
async fn shop_status_and_staff_roles_shape_the_catalog() {
    let app = spawn_app();
    let owner = merchant(&app, "status_owner", "status-shop").await;
    let cs = app.logged_in("cs_person", Role::Buyer).await;
    let op = app.logged_in("op_person", Role::Buyer).await;
    owner
        .submit(
            "/merchant/staff",
            "/merchant/staff",
            &[("handle", "cs_person"), ("role", "customer_service")],
        )
        .await
        .assert_status(303);
    owner
        .submit(
            "/merchant/staff",
            "/merchant/staff",
            &[("handle", "op_person"), ("role", "operator")],
        )
        .await
        .assert_status(303);
    cs.get("/merchant/products").await.assert_status(403);
    op.get("/merchant/products").await.assert_status(200);
    let id = draft(&app, &op, "运营创建的商品", "", "apparel").await;
    price_all(&app, &op, id, "20", "", "2")
        .await
        .assert_status(303);
    // A restricted shop can not list new products.
    let until = chrono::Utc::now().naive_utc() + chrono::Duration::days(7);
    diesel::update(shops::table)
        .set((
            shops::status.eq("restricted"),
            shops::restricted_until.eq(Some(until)),
        ))
        .execute(&mut *app.conn())
        .unwrap();
    let r = submit_listing(&op, id).await;
    r.assert_status(409);
    assert!(r.body.contains("不能发布新商品"));
    // When the restriction runs out, it can.
    app.clock.advance(chrono::Duration::days(8));
    submit_listing(&op, id).await.assert_status(303);
    assert_eq!(status(&app, id), "listed");
    // A cleared shop's products disappear from public view.
    diesel::update(shops::table)
        .set(shops::status.eq("cleared"))
        .execute(&mut *app.conn())
        .unwrap();
    app.client()
        .get(&format!("/products/{id}"))
        .await
        .assert_status(404);
    assert!(!app
        .client()
        .get("/shops/status-shop")
        .await
        .body
        .contains(&format!("/products/{id}")));
    // A shop suspended until reinstated: its product shows a notice.
    diesel::update(shops::table)
        .set((
            shops::status.eq("suspended"),
            shops::restricted_until.eq(None::<chrono::NaiveDateTime>),
        ))
        .execute(&mut *app.conn())
        .unwrap();
    assert!(app
        .client()
        .get(&format!("/products/{id}"))
        .await
        .body
        .contains("暂时无法购买"));
}

/// Lists a product with one SKU at `price` yuan.
async fn listed(app: &TestApp, c: &Client, title: &str, category: &str, price: &str) -> i64 {
    let id = draft(app, c, title, "", category).await;
    price_all(app, c, id, price, "", "5")
        .await
        .assert_status(303);
    submit_listing(c, id).await.assert_status(303);
    assert_eq!(status(app, id), "listed", "{title}");
    id
}

#[tokio::test]
async fn platform_search_finds_chinese_substrings_filters_sorts_and_hides_what_it_must() {
    let app = spawn_app();
    let a = merchant(&app, "search_a", "search-a").await;
    let b = merchant(&app, "search_b", "search-b").await;
    let shirt = listed(&app, &a, "亚麻短袖衬衫", "apparel-men", "129").await;
    let silk = listed(&app, &a, "Mulberry SILK 衬衫", "apparel-women", "399").await;
    let shoes = listed(&app, &b, "帆布休闲鞋", "apparel-shoes", "89").await;
    let hidden = listed(&app, &b, "下架的衬衫", "apparel-men", "10").await;
    b.submit(
        "/merchant/products",
        "/merchant/products/bulk",
        &[
            ("action", "delist"),
            (format!("id_{hidden}").as_str(), "on"),
        ],
    )
    .await
    .assert_status(303);
    let anon = app.client();
    let r = anon.get("/search?q=衬衫").await;
    r.assert_status(200);
    assert!(
        r.body.contains(&format!("/products/{shirt}"))
            && r.body.contains(&format!("/products/{silk}"))
    );
    assert!(
        !r.body.contains(&format!("/products/{hidden}")),
        "delisted products never appear"
    );
    assert!(!r.body.contains(&format!("/products/{shoes}")));
    assert!(
        anon.get("/search?q=silk")
            .await
            .body
            .contains(&format!("/products/{silk}")),
        "case-insensitive"
    );
    // Category filter includes the children of a top category.
    let men = category_id(&app, "apparel-men");
    let top = category_id(&app, "apparel");
    let r = anon.get(&format!("/search?q=&category={men}")).await;
    assert!(
        r.body.contains(&format!("/products/{shirt}"))
            && !r.body.contains(&format!("/products/{silk}"))
    );
    let r = anon
        .get(&format!("/search?category={top}&sort=price_asc"))
        .await;
    let (p_shoes, p_shirt, p_silk) = (
        r.body.find(&format!("/products/{shoes}\"")).unwrap(),
        r.body.find(&format!("/products/{shirt}\"")).unwrap(),
        r.body.find(&format!("/products/{silk}\"")).unwrap(),
    );
    assert!(p_shoes < p_shirt && p_shirt < p_silk, "cheapest first");
    let r = anon
        .get(&format!("/search?category={top}&sort=price_desc"))
        .await;
    assert!(
        r.body.find(&format!("/products/{silk}\"")).unwrap()
            < r.body.find(&format!("/products/{shoes}\"")).unwrap()
    );
    assert!(
        anon.get("/search?q=%25")
            .await
            .body
            .contains("没有找到相关商品"),
        "wildcards are literal"
    );
    // A restricted shop's products leave search (but stay on its storefront).
    let until = chrono::Utc::now().naive_utc() + chrono::Duration::days(7);
    diesel::update(shops::table.filter(shops::slug.eq("search-b")))
        .set((
            shops::status.eq("restricted"),
            shops::restricted_until.eq(Some(until)),
        ))
        .execute(&mut *app.conn())
        .unwrap();
    assert!(!anon
        .get("/search?q=帆布")
        .await
        .body
        .contains(&format!("/products/{shoes}")));
    assert!(anon
        .get("/shops/search-b")
        .await
        .body
        .contains(&format!("/products/{shoes}")));
    // The storefront filters by the categories the shop sells in.
    let shop_a = anon.get("/shops/search-a").await;
    assert!(shop_a.body.contains(&format!("?category={men}")));
    let women = category_id(&app, "apparel-women");
    let r = anon.get(&format!("/shops/search-a?category={women}")).await;
    assert!(
        r.body.contains(&format!("/products/{silk}"))
            && !r.body.contains(&format!("/products/{shirt}\""))
    );
    anon.get("/shops/search-a?category=zzz&page=0")
        .await
        .assert_status(200);
    // Garbage parameters fall back to defaults, never an error.
    anon.get("/search?sort=nonsense&category=abc&page=-5")
        .await
        .assert_status(200);
}

/// Search runs one of two plans (read the rarest gram's postings whole and sort, or walk the
/// listed products in the requested order until the page is full); whichever runs, the
/// buyer must get the same hits in the same order and the same total.
#[test]
fn both_search_plans_give_the_same_answer() {
    use haodian::catalog::search::{search, SearchStats, Sort};
    use haodian::pagination::PageQuery;
    let app = spawn_app();
    let mut conn = app.conn();
    haodian::seed::scale(&mut conn, 4, &mut |_| {}).unwrap();
    // Something to hide: a delisted product and a restricted shop.
    let first: i64 = products::table
        .select(products::id)
        .order(products::id)
        .first(&mut *conn)
        .unwrap();
    diesel::update(products::table.find(first + 3))
        .set(products::status.eq("delisted"))
        .execute(&mut *conn)
        .unwrap();
    let until = chrono::Utc::now().naive_utc() + chrono::Duration::days(3);
    let restricted: i64 = products::table
        .find(first + 120)
        .select(products::shop_id)
        .first(&mut *conn)
        .unwrap();
    diesel::update(shops::table.find(restricted))
        .set((
            shops::status.eq("restricted"),
            shops::restricted_until.eq(Some(until)),
        ))
        .execute(&mut *conn)
        .unwrap();
    let now = chrono::Utc::now().naive_utc();
    let walk = SearchStats::forcing(true);
    let postings = SearchStats::forcing(false);
    let default = SearchStats::default();
    let apparel = category_id(&app, "apparel").parse::<i64>().ok();
    let mut compared = 0;
    for q in [
        "T恤",
        "纯棉",
        "纯棉T恤",
        "款 1",
        "12",
        "oversize",
        "不存在的词",
    ] {
        for sort in Sort::ALL {
            for category in [None, apparel] {
                for page in [1, 2, 6] {
                    let run = |stats: &SearchStats, conn: &mut haodian::db::DbConn| {
                        let r = search(
                            conn,
                            stats,
                            q,
                            category,
                            sort,
                            PageQuery { page: Some(page) },
                            now,
                        )
                        .unwrap();
                        let ids: Vec<i64> = r.items.iter().map(|h| h.product.id).collect();
                        (ids, r.total)
                    };
                    let a = run(&walk, &mut conn);
                    let b = run(&postings, &mut conn);
                    let c = run(&default, &mut conn);
                    let what = format!("q={q} sort={sort:?} category={category:?} page={page}");
                    assert_eq!(a, b, "{what}");
                    assert_eq!(a, c, "{what}");
                    assert!(!a.0.contains(&(first + 3)), "delisted: {what}");
                    if page == 1 && !a.0.is_empty() {
                        compared += 1;
                    }
                }
            }
        }
    }
    assert!(compared >= 40, "the queries matched something ({compared})");
    // The restricted shop's products are in neither plan.
    let r = search(
        &mut conn,
        &walk,
        "",
        None,
        Sort::Newest,
        PageQuery { page: Some(1) },
        now,
    )
    .unwrap();
    assert!(r.total > 100);
    let hidden: Vec<i64> = products::table
        .filter(products::shop_id.eq(restricted))
        .select(products::id)
        .load(&mut *conn)
        .unwrap();
    // Result pages are reused for a few seconds, but a product delisted meanwhile is gone from
    // the very next search.
    let page1 = |conn: &mut haodian::db::DbConn| {
        search(
            conn,
            &default,
            "T恤",
            None,
            Sort::Overall,
            PageQuery { page: Some(1) },
            now,
        )
        .unwrap()
        .items
        .iter()
        .map(|h| h.product.id)
        .collect::<Vec<i64>>()
    };
    let before = page1(&mut conn);
    diesel::update(products::table.find(before[0]))
        .set(products::status.eq("delisted"))
        .execute(&mut *conn)
        .unwrap();
    let after = page1(&mut conn);
    assert!(!after.contains(&before[0]) && after.contains(&before[1]));
    for stats in [&walk, &postings] {
        for p in 1..=12 {
            let r = search(
                &mut conn,
                stats,
                "款",
                None,
                Sort::Newest,
                PageQuery { page: Some(p) },
                now,
            )
            .unwrap();
            assert!(r.items.iter().all(|h| !hidden.contains(&h.product.id)));
        }
    }
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 120])
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

#[tokio::test]
async fn product_images_are_checked_thumbnailed_and_ordered() {
    let app = spawn_app();
    let c = merchant(&app, "pictures", "pictures-shop").await;
    let other = merchant(&app, "thief", "thief-shop").await;
    let id = listed(&app, &c, "带图的商品标题", "apparel", "50").await;
    let page = format!("/merchant/products/{id}");
    let action = format!("/merchant/products/{id}/images");
    // A file that only starts like a PNG is refused, and nothing is written.
    let mut fake = crate::flows::PNG[..16].to_vec();
    fake.extend_from_slice(b"garbage garbage garbage");
    let r = submit_multipart(&c, &page, &action, &[], &[("images", &fake)]).await;
    r.assert_status(422);
    assert!(r.body.contains("文件需完整有效"));
    let mut big = png(10, 10);
    big.resize(5 * 1024 * 1024 + 1, 0);
    submit_multipart(&c, &page, &action, &[], &[("images", &big)])
        .await
        .assert_status(422);
    assert!(service_images(&app, id).is_empty());
    // Two real images: the first is the cover, thumbnails are 400×400 JPEGs.
    let (wide, tall) = (png(600, 300), png(200, 500));
    submit_multipart(
        &c,
        &page,
        &action,
        &[],
        &[("images", &wide), ("images", &tall)],
    )
    .await
    .assert_status(303);
    let imgs = service_images(&app, id);
    assert_eq!(imgs.len(), 2);
    let cover: Option<i64> = products::table
        .find(id)
        .select(products::cover_media_id)
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!(cover, imgs[0].2);
    let anon = app.client();
    let thumb = anon.get(&format!("/media/{}", imgs[0].2.unwrap())).await;
    assert_eq!(thumb.header("content-type").as_deref(), Some("image/jpeg"));
    let raw = reqwest::get(format!("{}/media/{}", app.addr, imgs[0].2.unwrap()))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let decoded = image::load_from_memory(&raw).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (400, 400));
    let product_page = anon.get(&format!("/products/{id}")).await;
    assert!(
        product_page.body.contains(&format!("/media/{}", imgs[0].1)),
        "gallery shows the full image"
    );
    assert!(
        anon.get("/shops/pictures-shop")
            .await
            .body
            .contains(&format!("/media/{}", imgs[0].2.unwrap())),
        "grid shows the thumbnail"
    );
    // Make the second the cover.
    c.submit(
        &page,
        &format!("/merchant/products/{id}/images/{}/cover", imgs[1].0),
        &[],
    )
    .await
    .assert_status(303);
    let cover: Option<i64> = products::table
        .find(id)
        .select(products::cover_media_id)
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!(cover, imgs[1].2);
    // The product page follows: the new cover is the big picture, both are thumbnails.
    let first_picture = |body: &str| -> String {
        let g = &body[body.find("class=\"card gallery\"").unwrap()..];
        let at = g.find("/media/").unwrap() + 7;
        g[at..].chars().take_while(|c| c.is_ascii_digit()).collect()
    };
    let product_page = anon.get(&format!("/products/{id}")).await;
    assert_eq!(first_picture(&product_page.body), imgs[1].1.to_string());
    assert!(product_page
        .body
        .contains(&format!("/media/{}", imgs[0].2.unwrap())));
    // Another shop can neither add nor change them.
    submit_multipart(&other, "/", &action, &[], &[("images", &wide)])
        .await
        .assert_status(404);
    other
        .submit(
            "/",
            &format!("/merchant/products/{id}/images/{}/delete", imgs[0].0),
            &[],
        )
        .await
        .assert_status(404);
    assert_eq!(service_images(&app, id).len(), 2);
    // At most eight.
    let many: Vec<Vec<u8>> = (0..7).map(|i| png(20 + i, 20)).collect();
    let files: Vec<(&str, &[u8])> = many.iter().map(|b| ("images", b.as_slice())).collect();
    let r = submit_multipart(&c, &page, &action, &[], &files).await;
    r.assert_status(422);
    assert!(r.body.contains("最多 8 张"));
    c.submit(
        &page,
        &format!("/merchant/products/{id}/images/{}/delete", imgs[0].0),
        &[],
    )
    .await
    .assert_status(303);
    assert_eq!(service_images(&app, id).len(), 1);
    let product_page = anon.get(&format!("/products/{id}")).await;
    assert_eq!(first_picture(&product_page.body), imgs[1].1.to_string());
    assert!(!product_page
        .body
        .contains(&format!("/media/{}\"", imgs[0].1)));
}

fn service_images(app: &TestApp, id: i64) -> Vec<(i64, i64, Option<i64>)> {
    haodian::catalog::service::images_of(&mut app.conn(), id).unwrap()
}

#[tokio::test]
async fn sku_csv_export_and_all_or_nothing_import() {
    let app = spawn_app();
    let c = merchant(&app, "csv_owner", "csv-shop").await;
    let other = merchant(&app, "csv_other", "csv-other").await;
    let id = draft(&app, &c, "=HYPERLINK(\"x\") 茶杯", "", "home-kitchen").await;
    c.submit(
        &format!("/merchant/products/{id}"),
        &format!("/merchant/products/{id}/variants"),
        &[("variants", "颜色: 青, 白")],
    )
    .await
    .assert_status(303);
    price_all(&app, &c, id, "30", "", "4")
        .await
        .assert_status(303);
    let foreign = listed(&app, &other, "别家的商品", "apparel", "10").await;
    let foreign_code: String = skus::table
        .filter(skus::product_id.eq(foreign))
        .select(skus::code)
        .first(&mut *app.conn())
        .unwrap();
    let csv = c.get("/merchant/products/skus.csv").await;
    csv.assert_status(200);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(
        lines[0],
        "sku_code,product_id,product_title,variant,price,list_price,stock"
    );
    assert_eq!(lines.len(), 3, "only this shop's SKUs: {}", csv.body);
    assert!(
        lines[1].contains("'=HYPERLINK"),
        "formula cells are neutralised"
    );
    assert!(lines[1].contains("30.00") && lines[1].contains(",4"));
    assert!(!csv.body.contains(&foreign_code));
    let codes: Vec<String> = skus::table
        .filter(skus::product_id.eq(id))
        .order(skus::position)
        .select(skus::code)
        .load(&mut *app.conn())
        .unwrap();
    let snapshot = || -> Vec<(i64, i64)> {
        skus::table
            .order(skus::id)
            .select((skus::price_fen, skus::stock))
            .load(&mut *app.conn())
            .unwrap()
    };
    let before = snapshot();
    // Bad rows: every one reported with its line number, nothing written.
    let bad = format!(
        "sku_code,price,list_price,stock\n{},12.50,,7\n{},abc,,3\nNOPE,1,,1\n{},1,,1\n{},2,,-1\n{},3,,2\n",
        codes[0], codes[1], foreign_code, codes[0], codes[1]
    );
    let r = submit_multipart(
        &c,
        "/merchant/products",
        "/merchant/products/skus.csv",
        &[],
        &[("file", bad.as_bytes())],
    )
    .await;
    r.assert_status(422);
    for (line, msg) in [
        (3, "价格格式不正确"),
        (4, "本店没有这个 SKU 编码"),
        (5, "本店没有这个 SKU 编码"),
        (6, "同一 SKU 在文件中出现多次"),
    ] {
        assert!(
            r.body.contains(&format!("<td>{line}</td><td>{msg}")),
            "line {line}: {msg}\n{}",
            r.body
        );
    }
    assert_eq!(before, snapshot(), "nothing written");
    let r = submit_multipart(
        &c,
        "/merchant/products",
        "/merchant/products/skus.csv",
        &[],
        &[("file", b"code,cost\nA,1\n")],
    )
    .await;
    assert!(r.body.contains("缺少必需的列"));
    // A good file (with a BOM, as spreadsheet apps write it) updates everything at once.
    let good = format!(
        "\u{feff}sku_code,price,stock\n{},12.50,7\n{},13,0\n",
        codes[0], codes[1]
    );
    submit_multipart(
        &c,
        "/merchant/products",
        "/merchant/products/skus.csv",
        &[],
        &[("file", good.as_bytes())],
    )
    .await
    .assert_status(303);
    let rows: Vec<(i64, i64)> = skus::table
        .filter(skus::product_id.eq(id))
        .order(skus::position)
        .select((skus::price_fen, skus::stock))
        .load(&mut *app.conn())
        .unwrap();
    assert_eq!(rows, vec![(1250, 7), (1300, 0)]);
    let range: (Option<i64>, Option<i64>) = products::table
        .find(id)
        .select((products::price_min, products::price_max))
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!(range, (Some(1250), Some(1300)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stock_adjustments_are_conditional_and_confined_to_the_shop() {
    let app = spawn_app();
    let c = merchant(&app, "stocker", "stock-shop").await;
    let other = merchant(&app, "stock_thief", "stock-thief").await;
    let id = listed(&app, &c, "库存测试商品", "apparel", "10").await;
    let sku = sku_ids(&app, id)[0];
    let stock = || -> i64 {
        skus::table
            .find(sku)
            .select(skus::stock)
            .first(&mut *app.conn())
            .unwrap()
    };
    assert_eq!(stock(), 5);
    c.submit(
        "/merchant/products",
        &format!("/merchant/skus/{sku}/stock"),
        &[("delta", "+7")],
    )
    .await
    .assert_status(303);
    assert_eq!(stock(), 12);
    let r = c
        .submit(
            "/merchant/products",
            &format!("/merchant/skus/{sku}/stock"),
            &[("delta", "-13")],
        )
        .await;
    r.assert_status(409);
    assert!(r.body.contains("库存不足"));
    assert_eq!(stock(), 12);
    other
        .submit(
            "/merchant/products",
            &format!("/merchant/skus/{sku}/stock"),
            &[("delta", "-1")],
        )
        .await
        .assert_status(404);
    assert_eq!(stock(), 12);
    // Twenty concurrent "-1"s on 12: exactly 12 succeed, stock ends at 0, never below.
    let token = c.csrf().await;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (c, token) = (c.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            c.post(
                &format!("/merchant/skus/{sku}/stock"),
                &[("csrf_token", token.as_str()), ("delta", "-1")],
            )
            .await
            .status
        }));
    }
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.unwrap());
    }
    assert_eq!(codes.iter().filter(|s| **s == 303).count(), 12, "{codes:?}");
    assert_eq!(codes.iter().filter(|s| **s == 409).count(), 8, "{codes:?}");
    assert_eq!(stock(), 0);
}

#[tokio::test]
async fn admins_edit_categories_and_the_rules_follow_at_once() {
    let app = spawn_app();
    let c = merchant(&app, "cat_merchant", "cat-shop").await;
    let moderator = app.logged_in("cat_mod", Role::Moderator).await;
    moderator.get("/admin/categories").await.assert_status(403);
    let admin = app.logged_in("cat_admin", Role::Admin).await;
    admin.get("/admin/categories").await.assert_status(200);
    let shoes = category_id(&app, "apparel-shoes");
    // Shoes now require a brand authorization, which this shop lacks.
    admin
        .submit(
            "/admin/categories",
            &format!("/admin/categories/{shoes}"),
            &[
                ("name_zh", "鞋靴"),
                ("name_en", "Shoes"),
                ("deposit", "3000"),
                ("req_brand_authorization", "on"),
            ],
        )
        .await
        .assert_status(303);
    let id = draft(&app, &c, "品牌运动鞋新款", "", "apparel-shoes").await;
    price_all(&app, &c, id, "399", "", "3").await;
    submit_listing(&c, id).await.assert_status(303);
    assert_eq!(status(&app, id), "needs_changes");
    let detail: String = audit_log::table
        .filter(audit_log::action.eq("category.edit"))
        .select(audit_log::detail)
        .first(&mut *app.conn())
        .unwrap();
    assert!(
        detail.contains("200000 → 300000") && detail.contains("brand_authorization"),
        "{detail}"
    );
    // A qualification requirement is a rule: the change is a new rule-set version with a diff.
    let diff: String = haodian::db::schema::rule_sets::table
        .order(haodian::db::schema::rule_sets::id.desc())
        .select(haodian::db::schema::rule_sets::diff)
        .first(&mut *app.conn())
        .unwrap();
    assert!(
        diff.contains("+ [qualifications] apparel-shoes requires brand_authorization"),
        "{diff}"
    );
    // Bad input changes nothing.
    let r = admin
        .submit(
            "/admin/categories",
            &format!("/admin/categories/{shoes}"),
            &[("name_zh", ""), ("name_en", "Shoes"), ("deposit", "abc")],
        )
        .await;
    r.assert_status(422);
    // A new sub-category.
    let top = category_id(&app, "home");
    admin
        .submit(
            "/admin/categories",
            "/admin/categories/new",
            &[
                ("parent_id", &top),
                ("slug", "home-lighting"),
                ("name_zh", "灯具"),
                ("name_en", "Lighting"),
                ("deposit", "1000"),
            ],
        )
        .await
        .assert_status(303);
    assert!(category_id(&app, "home-lighting").parse::<i64>().is_ok());
}
