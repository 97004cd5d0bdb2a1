//! 号店一体: opening shops, the one-to-one binding, staff, authorized accounts, follows,
//! profiles and storefronts — including the cross-shop (IDOR) cases.

use crate::common::*;
use diesel::prelude::*;
use haodian::accounts::Role;
use haodian::db::schema::{audit_log, shops, users};

const PDF: &[u8] = b"%PDF-1.4\n% test document\n";

fn category_id(app: &TestApp, slug: &str) -> String {
    use haodian::db::schema::categories;
    categories::table
        .filter(categories::slug.eq(slug))
        .select(categories::id)
        .first::<i64>(&mut *app.conn())
        .unwrap()
        .to_string()
}

/// Opens an individual apparel shop (no qualifications needed) through the form.
async fn open_apparel_shop(app: &TestApp, c: &Client, name: &str, slug: &str) -> Resp {
    let cat = category_id(app, "apparel");
    submit_multipart(
        c,
        "/",
        "/merchant/shop/open",
        &[
            ("name", name),
            ("slug", slug),
            ("description", "第一行\n第二行"),
            ("main_category_id", &cat),
            ("entity_type", "individual"),
        ],
        &[],
    )
    .await
}

fn user_id(app: &TestApp, handle: &str) -> i64 {
    users::table
        .filter(users::handle.eq(handle))
        .select(users::id)
        .first(&mut *app.conn())
        .unwrap()
}

#[tokio::test]
async fn opening_a_shop_binds_the_account_and_shows_everywhere() {
    let app = spawn_app();
    let c = app.logged_in("teahouse", Role::Buyer).await;
    let home = c.get("/merchant").await;
    home.assert_status(200);
    assert!(
        home.body.contains("/merchant/shop/open"),
        "call to open a shop"
    );
    let r = open_apparel_shop(&app, &c, "山野茶铺", "shanye-tea").await;
    r.assert_status(303);
    assert_eq!(r.location(), "/merchant");
    let home = c.get("/merchant").await;
    assert!(
        home.body.contains("山野茶铺") && home.body.contains("店主"),
        "{}",
        home.body
    );
    // The account became a merchant, and it was audited.
    let uid = user_id(&app, "teahouse");
    assert!(haodian::accounts::service::roles_of(&mut app.conn(), uid)
        .unwrap()
        .contains(&Role::Merchant));
    let opened: i64 = audit_log::table
        .filter(audit_log::action.eq("shop.open"))
        .count()
        .get_result(&mut *app.conn())
        .unwrap();
    assert_eq!(opened, 1);
    // Storefront links back to the official account; the profile enters the shop.
    let anon = app.client();
    let store = anon.get("/shops/shanye-tea").await;
    store.assert_status(200);
    assert!(store.body.contains("山野茶铺") && store.body.contains("href=\"/@teahouse\""));
    assert!(
        store.body.contains("第一行<br>第二行"),
        "line breaks kept, text escaped"
    );
    let profile = anon.get("/@teahouse").await;
    profile.assert_status(200);
    assert!(
        profile.body.contains("href=\"/shops/shanye-tea\"") && profile.body.contains("官方账号")
    );
    // A second shop for the same account is refused, and nothing is written.
    let before = shops::table
        .count()
        .get_result::<i64>(&mut *app.conn())
        .unwrap();
    let r = open_apparel_shop(&app, &c, "第二家店", "second-shop").await;
    r.assert_status(409);
    assert!(r.body.contains("一个账号只能是一家店铺的官方账号"));
    assert_eq!(
        before,
        shops::table
            .count()
            .get_result::<i64>(&mut *app.conn())
            .unwrap()
    );
    // The open page now leads to the merchant home.
    assert_eq!(c.get("/merchant/shop/open").await.location(), "/merchant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_openings_bind_one_account_to_one_shop() {
    let app = spawn_app();
    let c = app.logged_in("racer", Role::Buyer).await;
    let cat = category_id(&app, "apparel");
    let token = csrf_in(&c.get("/merchant/shop/open").await.body);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let c = c.clone();
        let (token, cat) = (token.clone(), cat.clone());
        tasks.push(tokio::spawn(async move {
            let form = reqwest::multipart::Form::new()
                .text("csrf_token", token)
                .text("name", format!("店铺{i}"))
                .text("slug", format!("race-shop-{i}"))
                .text("main_category_id", cat)
                .text("entity_type", "individual");
            Client::read(
                c.http
                    .post(format!("{}/merchant/shop/open", c.base))
                    .multipart(form)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
            .status
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 303).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 303 || *s == 409),
        "{statuses:?}"
    );
    let uid = user_id(&app, "racer");
    let n: i64 = shops::table
        .filter(shops::official_user_id.eq(uid))
        .count()
        .get_result(&mut *app.conn())
        .unwrap();
    assert_eq!(n, 1);
    // And the database itself refuses a second binding.
    let dup = diesel::insert_into(shops::table)
        .values((
            shops::slug.eq("direct-insert"),
            shops::name.eq("x"),
            shops::description.eq(""),
            shops::main_category_id.eq(cat.parse::<i64>().unwrap()),
            shops::entity_type.eq("individual"),
            shops::official_user_id.eq(uid),
            shops::status.eq("active"),
            shops::created_at.eq(chrono::Utc::now().naive_utc()),
            shops::updated_at.eq(chrono::Utc::now().naive_utc()),
        ))
        .execute(&mut *app.conn());
    assert!(dup.is_err());
}

#[tokio::test]
async fn qualifications_are_required_by_category_and_entity_and_checked() {
    let app = spawn_app();
    let c = app.logged_in("snacker", Role::Buyer).await;
    let food = category_id(&app, "food");
    let base = [
        ("name", "零食铺子"),
        ("slug", "snack-shop"),
        ("main_category_id", food.as_str()),
        ("entity_type", "enterprise"),
    ];
    let r = submit_multipart(&c, "/merchant/shop/open", "/merchant/shop/open", &base, &[]).await;
    r.assert_status(422);
    assert!(
        r.body.contains("该主体类型或类目需要此资质"),
        "food licence and business licence required"
    );
    let mut fields = base.to_vec();
    fields.push(("food_license", "JY1234"));
    fields.push(("business_license", "91310000MA1FL5XY2K"));
    let r = submit_multipart(
        &c,
        "/merchant/shop/open",
        "/merchant/shop/open",
        &fields,
        &[("business_license_doc", PDF)],
    )
    .await;
    r.assert_status(422);
    assert!(r.body.contains("JY 或 SC 加 14 位数字"));
    let mut fields = base.to_vec();
    fields.push(("food_license", "JY13101050012345"));
    fields.push(("business_license", "91310000MA1FL5XY2K"));
    // A document must be a real image or PDF, and not too large.
    let r = submit_multipart(
        &c,
        "/merchant/shop/open",
        "/merchant/shop/open",
        &fields,
        &[
            ("business_license_doc", PDF),
            ("food_license_doc", b"MZ\x90\x00 not a pdf"),
        ],
    )
    .await;
    r.assert_status(422);
    assert!(r.body.contains("证件需为"));
    let mut big = PDF.to_vec();
    big.resize(5 * 1024 * 1024 + 1, b' ');
    let r = submit_multipart(
        &c,
        "/merchant/shop/open",
        "/merchant/shop/open",
        &fields,
        &[("business_license_doc", PDF), ("food_license_doc", &big)],
    )
    .await;
    r.assert_status(422);
    assert!(r.body.contains("不能超过 5 MB"));
    assert_eq!(
        shops::table
            .count()
            .get_result::<i64>(&mut *app.conn())
            .unwrap(),
        0
    );
    let r = submit_multipart(
        &c,
        "/merchant/shop/open",
        "/merchant/shop/open",
        &fields,
        &[
            ("business_license_doc", PDF),
            ("food_license_doc", crate::flows::PNG),
        ],
    )
    .await;
    r.assert_status(303);
    use haodian::db::schema::shop_qualifications as sq;
    let kinds: Vec<(String, Option<i64>)> = sq::table
        .order(sq::kind)
        .select((sq::kind, sq::document_media_id))
        .load(&mut *app.conn())
        .unwrap();
    assert_eq!(kinds.len(), 2);
    assert!(kinds.iter().all(|(_, doc)| doc.is_some()));
}

#[tokio::test]
async fn opening_needs_a_verified_email_and_valid_fields() {
    let app = spawn_app();
    let c = app.client();
    let (_, r) = signup(&c, "newbie").await;
    r.assert_status(303);
    let r = open_apparel_shop(&app, &c, "新手店", "newbie-shop").await;
    r.assert_status(422);
    assert!(r.body.contains("请先验证邮箱"));
    let c2 = app.logged_in("checker", Role::Buyer).await;
    let r = submit_multipart(
        &c2,
        "/merchant/shop/open",
        "/merchant/shop/open",
        &[
            ("name", "x"),
            ("slug", "-bad"),
            ("main_category_id", "999"),
            ("entity_type", "pirate"),
        ],
        &[],
    )
    .await;
    r.assert_status(422);
    for msg in ["店铺名称需为 2–30 个字符", "只能包含小写字母", "请选择一项"]
    {
        assert!(r.body.contains(msg), "{msg}");
    }
    open_apparel_shop(&app, &c2, "好店", "taken-slug")
        .await
        .assert_status(303);
    let c3 = app.logged_in("latecomer", Role::Buyer).await;
    let r = open_apparel_shop(&app, &c3, "另一家", "taken-slug").await;
    r.assert_status(422);
    assert!(r.body.contains("该店铺地址已被使用"));
}

#[tokio::test]
async fn staff_roles_and_cross_shop_access() {
    let app = spawn_app();
    let owner_a = app.logged_in("owner_a", Role::Buyer).await;
    open_apparel_shop(&app, &owner_a, "A 店", "shop-a")
        .await
        .assert_status(303);
    let owner_b = app.logged_in("owner_b", Role::Buyer).await;
    open_apparel_shop(&app, &owner_b, "B 店", "shop-b")
        .await
        .assert_status(303);
    let operator = app.logged_in("op_one", Role::Buyer).await;
    let service = app.logged_in("cs_one", Role::Buyer).await;
    owner_a
        .submit(
            "/merchant/staff",
            "/merchant/staff",
            &[("handle", "@op_one"), ("role", "operator")],
        )
        .await
        .assert_status(303);
    owner_a
        .submit(
            "/merchant/staff",
            "/merchant/staff",
            &[("handle", "cs_one"), ("role", "customer_service")],
        )
        .await
        .assert_status(303);
    let r = owner_a
        .submit(
            "/merchant/staff",
            "/merchant/staff",
            &[("handle", "op_one"), ("role", "operator")],
        )
        .await;
    r.assert_status(422);
    assert!(r.body.contains("已经是本店员工"));
    let r = owner_a
        .submit(
            "/merchant/staff",
            "/merchant/staff",
            &[("handle", "ghost_user"), ("role", "operator")],
        )
        .await;
    assert!(r.body.contains("没有找到该账号"));
    let page = owner_a.get("/merchant/staff").await;
    assert!(page.body.contains("@op_one") && page.body.contains("@cs_one"));

    // Staff see their shop with their role, but not the owner's pages.
    let home = operator.get("/merchant").await;
    assert!(home.body.contains("A 店") && home.body.contains("运营"));
    for path in [
        "/merchant/staff",
        "/merchant/authorizations",
        "/merchant/shop",
    ] {
        let r = operator.get(path).await;
        r.assert_status(403);
        assert!(r.body.contains("岗位不能进行此操作"), "{path}");
        service.get(path).await.assert_status(403);
    }
    let token = operator.csrf().await;
    operator
        .post(
            "/merchant/staff",
            &[
                ("csrf_token", &token),
                ("handle", "owner_b"),
                ("role", "operator"),
            ],
        )
        .await
        .assert_status(403);

    // Owner B can not see or change A's staff: A's member ids are not in B's shop.
    let op_id = user_id(&app, "op_one");
    assert!(!owner_b
        .get("/merchant/staff")
        .await
        .body
        .contains("@op_one"));
    let token = owner_b.csrf().await;
    owner_b
        .post(
            &format!("/merchant/staff/{op_id}/remove"),
            &[("csrf_token", &token)],
        )
        .await
        .assert_status(404);
    assert!(
        operator.get("/merchant").await.body.contains("A 店"),
        "still staff of A"
    );
    // B's settings change B, never A.
    submit_multipart(
        &owner_b,
        "/merchant/shop",
        "/merchant/shop",
        &[("name", "B 店新名"), ("description", "")],
        &[],
    )
    .await
    .assert_status(303);
    let names: Vec<String> = shops::table
        .order(shops::id)
        .select(shops::name)
        .load(&mut *app.conn())
        .unwrap();
    assert_eq!(names, vec!["A 店".to_string(), "B 店新名".to_string()]);
    // The owner removes staff.
    owner_a
        .submit(
            "/merchant/staff",
            &format!("/merchant/staff/{op_id}/remove"),
            &[],
        )
        .await
        .assert_status(303);
    assert!(operator
        .get("/merchant")
        .await
        .body
        .contains("/merchant/shop/open"));
}

#[tokio::test]
async fn authorized_accounts_follow_the_limits_and_the_180_day_rule() {
    let app = spawn_app_with(|s| {
        s.authorized_max = 2;
        s.authorized_min_followers = 2;
    });
    let owner = app.logged_in("brand_owner", Role::Buyer).await;
    open_apparel_shop(&app, &owner, "品牌店", "brand-shop")
        .await
        .assert_status(303);
    let fans: Vec<Client> = futures_join(&app, &["fan_a", "fan_b"]).await;
    let sellers = ["seller_a", "seller_b", "seller_c", "seller_d"];
    for s in sellers {
        app.user(s, Role::Buyer);
    }
    // seller_a has one follower: not enough.
    let token = fans[0].csrf().await;
    fans[0]
        .post("/@seller_a/follow", &[("csrf_token", &token)])
        .await
        .assert_status(303);
    let r = owner
        .submit(
            "/merchant/authorizations",
            "/merchant/authorizations",
            &[("handle", "seller_a")],
        )
        .await;
    r.assert_status(422);
    assert!(r.body.contains("粉丝数不足"));
    for s in sellers {
        for f in &fans {
            let token = f.csrf().await;
            f.post(&format!("/@{s}/follow"), &[("csrf_token", &token)])
                .await
                .assert_status(303);
        }
    }
    owner
        .submit(
            "/merchant/authorizations",
            "/merchant/authorizations",
            &[("handle", "seller_a")],
        )
        .await
        .assert_status(303);
    owner
        .submit(
            "/merchant/authorizations",
            "/merchant/authorizations",
            &[("handle", "@seller_b")],
        )
        .await
        .assert_status(303);
    let r = owner
        .submit(
            "/merchant/authorizations",
            "/merchant/authorizations",
            &[("handle", "seller_c")],
        )
        .await;
    r.assert_status(409);
    assert!(r.body.contains("授权账号数量已达上限"));
    // An official account can not be authorized.
    let other = app.logged_in("other_owner", Role::Buyer).await;
    open_apparel_shop(&app, &other, "别家", "other-shop")
        .await
        .assert_status(303);
    // The authorized account's profile shows the shop.
    let profile = app.client().get("/@seller_a").await;
    assert!(profile.body.contains("授权带货账号") && profile.body.contains("/shops/brand-shop"));
    // Not revocable before 180 days…
    let page = owner.get("/merchant/authorizations").await;
    assert!(page.body.contains("后可解除"));
    use haodian::db::schema::shop_authorizations as sa;
    let id: i64 = sa::table
        .order(sa::id)
        .select(sa::id)
        .first(&mut *app.conn())
        .unwrap();
    let r = owner
        .submit(
            "/merchant/authorizations",
            &format!("/merchant/authorizations/{id}/revoke"),
            &[],
        )
        .await;
    r.assert_status(409);
    assert!(r.body.contains("暂不能解除"));
    // …another shop can not touch it at all…
    other
        .submit(
            "/merchant/authorizations",
            &format!("/merchant/authorizations/{id}/revoke"),
            &[],
        )
        .await
        .assert_status(404);
    let r = other
        .submit(
            "/merchant/authorizations",
            "/merchant/authorizations",
            &[("handle", "brand_owner")],
        )
        .await;
    assert!(r.body.contains("官方账号，不能被授权"));
    // …and after 180 days the owner can.
    app.clock.advance(chrono::Duration::days(181));
    owner
        .submit(
            "/merchant/authorizations",
            &format!("/merchant/authorizations/{id}/revoke"),
            &[],
        )
        .await
        .assert_status(303);
    let live: i64 = sa::table
        .filter(sa::revoked_at.is_null())
        .count()
        .get_result(&mut *app.conn())
        .unwrap();
    assert_eq!(live, 1);
    owner
        .submit(
            "/merchant/authorizations",
            "/merchant/authorizations",
            &[("handle", "seller_c")],
        )
        .await
        .assert_status(303);
    // An authorized account can not open its own shop while authorized.
    let seller_c = app.client();
    seller_c
        .login("seller_c@example.com", PASSWORD)
        .await
        .assert_status(303);
    let r = open_apparel_shop(&app, &seller_c, "自己的店", "own-shop").await;
    r.assert_status(409);
    assert!(r.body.contains("正在为其他店铺带货"));
}

async fn futures_join(app: &TestApp, handles: &[&str]) -> Vec<Client> {
    let mut out = Vec::new();
    for h in handles {
        out.push(app.logged_in(h, Role::Buyer).await);
    }
    out
}

#[tokio::test]
async fn follow_and_unfollow_update_counts() {
    let app = spawn_app();
    let fan = app.logged_in("fan_one", Role::Buyer).await;
    app.user("star", Role::Creator);
    let page = fan.get("/@star").await;
    assert!(page.body.contains("<strong id=\"followers\">0</strong>"));
    let token = csrf_in(&page.body);
    fan.post("/@star/follow", &[("csrf_token", &token)])
        .await
        .assert_status(303);
    fan.post("/@star/follow", &[("csrf_token", &token)])
        .await
        .assert_status(303);
    let page = fan.get("/@Star").await;
    assert!(
        page.body.contains("<strong id=\"followers\">1</strong>"),
        "following twice counts once; handles are case-insensitive"
    );
    assert!(page.body.contains("id=\"unfollow\""));
    assert!(fan
        .get("/@fan_one")
        .await
        .body
        .contains("<strong id=\"following\">1</strong>"));
    // Unfollowing twice counts once too (the counts are kept on the account).
    for _ in 0..2 {
        fan.post("/@star/unfollow", &[("csrf_token", &token)])
            .await
            .assert_status(303);
    }
    assert!(fan
        .get("/@star")
        .await
        .body
        .contains("<strong id=\"followers\">0</strong>"));
    assert!(fan
        .get("/@fan_one")
        .await
        .body
        .contains("<strong id=\"following\">0</strong>"));
    // Many fans at once: each follow counts once.
    let mut fans = Vec::new();
    for i in 0..6 {
        let c = app.logged_in(&format!("crowd_{i}"), Role::Buyer).await;
        let t = c.csrf().await;
        fans.push((c, t));
    }
    let follows = fans
        .iter()
        .map(|(c, t)| async move { c.post("/@star/follow", &[("csrf_token", t.as_str())]).await });
    for r in futures_util::future::join_all(follows).await {
        r.assert_status(303);
    }
    assert!(fan
        .get("/@star")
        .await
        .body
        .contains("<strong id=\"followers\">6</strong>"));
    // A shop's storefront counts its official account's followers.
    let owner = app.logged_in("tea_owner", Role::Buyer).await;
    open_apparel_shop(&app, &owner, "茶铺", "tea-owner")
        .await
        .assert_status(303);
    let followers = |body: &str| body.contains("<span id=\"shop-followers\">1</span>");
    assert!(!followers(&fan.get("/shops/tea-owner").await.body));
    fan.post("/@tea_owner/follow", &[("csrf_token", &token)])
        .await
        .assert_status(303);
    assert!(followers(&fan.get("/shops/tea-owner").await.body));
    fan.post("/@fan_one/follow", &[("csrf_token", &token)])
        .await
        .assert_status(409);
    fan.post("/@nobody_at_all/follow", &[("csrf_token", &token)])
        .await
        .assert_status(404);
    // Anonymous visitors are sent to log in.
    let anon = app.client();
    let token = anon.csrf().await;
    let r = anon.post("/@star/follow", &[("csrf_token", &token)]).await;
    r.assert_status(303);
    assert!(r.location().starts_with("/login"));
}

#[tokio::test]
async fn only_an_admin_rebinds_a_shop_and_it_is_audited() {
    let app = spawn_app();
    let owner = app.logged_in("first_owner", Role::Buyer).await;
    open_apparel_shop(&app, &owner, "传承小店", "heritage")
        .await
        .assert_status(303);
    app.user("heir", Role::Buyer);
    let shop_id: i64 = shops::table
        .select(shops::id)
        .first(&mut *app.conn())
        .unwrap();
    let moderator = app.logged_in("mod_x", Role::Moderator).await;
    moderator.get("/admin/shops").await.assert_status(200);
    let token = moderator.csrf().await;
    moderator
        .post(
            &format!("/admin/shops/{shop_id}/rebind"),
            &[
                ("csrf_token", &token),
                ("handle", "heir"),
                ("reason", "继承"),
            ],
        )
        .await
        .assert_status(403);
    let admin = app.logged_in("root_admin", Role::Admin).await;
    let list = admin.get("/admin/shops?q=heritage").await;
    assert!(list.body.contains("传承小店") && list.body.contains("@first_owner"));
    let r = admin
        .submit(
            "/admin/shops",
            &format!("/admin/shops/{shop_id}/rebind"),
            &[("handle", "heir"), ("reason", "x")],
        )
        .await;
    r.assert_status(303);
    assert!(
        admin.get("/admin/shops").await.body.contains("4–500"),
        "reason too short is explained"
    );
    admin
        .submit(
            "/admin/shops",
            &format!("/admin/shops/{shop_id}/rebind"),
            &[("handle", "@heir"), ("reason", "原店主书面申请转让")],
        )
        .await
        .assert_status(303);
    let official: i64 = shops::table
        .find(shop_id)
        .select(shops::official_user_id)
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!(official, user_id(&app, "heir"));
    let detail: String = audit_log::table
        .filter(audit_log::action.eq("shop.rebind"))
        .select(audit_log::detail)
        .first(&mut *app.conn())
        .unwrap();
    assert!(detail.contains("原店主书面申请转让"));
    assert!(
        owner
            .get("/merchant")
            .await
            .body
            .contains("/merchant/shop/open"),
        "the old owner has no shop now"
    );
    let heir = app.client();
    heir.login("heir@example.com", PASSWORD)
        .await
        .assert_status(303);
    assert!(heir.get("/merchant").await.body.contains("传承小店"));
}

#[tokio::test]
async fn suspended_and_cleared_shops_show_a_notice() {
    let app = spawn_app();
    let owner = app.logged_in("troubled", Role::Buyer).await;
    open_apparel_shop(&app, &owner, "问题店铺", "troubled-shop")
        .await
        .assert_status(303);
    let anon = app.client();
    assert!(!anon
        .get("/shops/troubled-shop")
        .await
        .body
        .contains("暂时无法购买"));
    diesel::update(shops::table)
        .set(shops::status.eq("suspended"))
        .execute(&mut *app.conn())
        .unwrap();
    assert!(anon
        .get("/shops/troubled-shop")
        .await
        .body
        .contains("暂时无法购买"));
    diesel::update(shops::table)
        .set(shops::status.eq("cleared"))
        .execute(&mut *app.conn())
        .unwrap();
    assert!(anon
        .get("/shops/troubled-shop")
        .await
        .body
        .contains("已被平台清退"));
    // A restriction that has run out no longer restricts.
    let past = chrono::Utc::now().naive_utc() - chrono::Duration::hours(1);
    diesel::update(shops::table)
        .set((
            shops::status.eq("restricted"),
            shops::restricted_until.eq(Some(past)),
        ))
        .execute(&mut *app.conn())
        .unwrap();
    assert!(owner.get("/merchant").await.body.contains("正常"));
}
