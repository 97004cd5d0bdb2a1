//! Web security over HTTP: CSRF, throttling, role guards, bad input, escaping, headers.

use crate::common::*;
use diesel::prelude::*;
use haodian::accounts::Role;
use haodian::db::schema::users;

/// Every POST route with a plausible body (without its token).
const POST_ROUTES: &[(&str, &str)] = &[
    ("/signup", "email=x%40example.com&handle=xuser&display_name=X&password=violet-harbor-train-42&password_confirm=violet-harbor-train-42"),
    ("/login", "email=a%40example.com&password=violet-harbor-train-42"),
    ("/logout", ""),
    ("/verify/resend", ""),
    ("/password/forgot", "email=a%40example.com"),
    ("/password/reset", "token=x&password=lantern-orchard-quiet-91&password_confirm=lantern-orchard-quiet-91"),
    ("/settings/profile", "display_name=Hacked&bio=&locale=en"),
    ("/settings/password", "current_password=violet-harbor-train-42&password=lantern-orchard-quiet-91&password_confirm=lantern-orchard-quiet-91"),
    ("/settings/email", "current_password=violet-harbor-train-42&new_email=evil%40example.com"),
    ("/settings/sessions/revoke", ""),
    ("/lang", "lang=en&next=%2F"),
    ("/admin/users/1/roles", "role=admin"),
    ("/admin/users/1/roles/revoke", "role=admin"),
    ("/merchant/staff", "handle=attacker&role=operator"),
    ("/merchant/staff/1/remove", ""),
    ("/merchant/authorizations", "handle=attacker"),
    ("/merchant/authorizations/1/revoke", ""),
    ("/@attacker/follow", ""),
    ("/@attacker/unfollow", ""),
    ("/admin/shops/1/rebind", "handle=attacker&reason=because"),
    ("/merchant/shop/open", "name=Evil&slug=evil-shop"),
    ("/merchant/products/new", "title=Evil+product&category_id=1"),
    ("/merchant/products/1", "title=Evil+product&category_id=1"),
    ("/merchant/products/1/variants", "variants=a%3A+b"),
    ("/merchant/products/1/skus", "sku_1_price=1"),
    ("/merchant/products/1/submit", ""),
    ("/merchant/products/bulk", "action=delist&id_1=on"),
    ("/merchant/products/skus.csv", ""),
    ("/merchant/products/1/images", ""),
    ("/merchant/products/1/images/1/delete", ""),
    ("/merchant/skus/1/stock", "delta=-1"),
    ("/admin/products/1/approve", ""),
    ("/admin/products/1/delist", "reason=because+so"),
    ("/admin/categories/new", "slug=evil&name_zh=x&name_en=x&deposit=0"),
    ("/merchant/shop", "name=Evil"),
    ("/settings/avatar", ""),
    ("/cart/add", "sku=1&quantity=1"),
    ("/cart/update", "sku=1&quantity=0"),
    ("/checkout", "key=0123456789abcdef0123&address_id=1"),
    ("/addresses", "recipient=x&phone=13812345678&province=xx&city=xx&district=xx&detail=xxxx"),
    ("/addresses/1/delete", ""),
    ("/addresses/1/default", ""),
    ("/pay", "checkout=1"),
    ("/pay/sim/0123456789abcdef0123456789abcdef01234567", "outcome=succeeded"),
    ("/orders/2611300000000001/cancel", "reason=other"),
    ("/orders/2611300000000001/confirm", ""),
    ("/merchant/orders/2611300000000001/ship", "carrier=sf&tracking_no=SF1234567890"),
    ("/orders/2611300000000001/refund/return", "return_tracking_no=SF1234567890"),
    ("/merchant/refunds/1/approve", "return_address=somewhere+far"),
    ("/merchant/refunds/1/reject", "reject_reason=because"),
    ("/merchant/refunds/1/received", "restock=1"),
    ("/merchant/complaints/1/reply", "reply=whatever+it+is"),
    ("/admin/complaints/1/rule", "verdict=at_fault&note=because+so"),
    ("/merchant/ratings/1/reply", "reply=whatever+it+is"),
    ("/orders/2611300000000001/rate", "described=1&service=1&logistics=1"),
    ("/admin/violations", "shop=victim-shop&type_id=1&description=made+up+violation"),
    ("/merchant/violations/1/appeal", "body=please+revoke+this+one"),
    ("/admin/appeals/1/decide", "verdict=revoke&reason=because+so"),
    ("/admin/shops/1/suspend", "reason=because+so"),
    ("/admin/shops/1/reinstate", "reason=because+so"),
    ("/admin/shops/1/clear", "confirm=victim-shop&reason=because+so"),
    ("/admin/rules/terms", "term=x&match_type=substring&scope=all&severity=block&legal_basis=xx"),
    ("/admin/rules/terms/1/delete", ""),
    ("/admin/rules/params", "key=appeal_days&value=3"),
    ("/admin/rules/types", "code=evil_type&name_zh=x&name_en=x&track=general&points=1"),
    ("/admin/rules/types/fraud/retire", ""),
    ("/admin/rules/nodes", "track=general&threshold=1&action=clear"),
    ("/admin/rules/nodes/1/delete", ""),
    ("/admin/rules/score", "score=%7B%7D"),
    ("/login/mfa", "code=123456"),
    ("/settings/mfa/enable", "secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&code=123456"),
    ("/settings/mfa/disable", "code=123456"),
];

#[tokio::test]
async fn every_post_without_or_with_a_foreign_csrf_token_is_403_and_changes_nothing() {
    let app = spawn_app();
    let victim = app.logged_in("victim", Role::Buyer).await;
    let attacker = app.logged_in("attacker", Role::Buyer).await;
    let foreign = attacker.csrf().await;
    let before = (app.counts(), app.user_rows());
    for (path, body) in POST_ROUTES {
        let r = victim.post_raw(path, body.to_string()).await;
        assert_eq!(r.status, 403, "{path} without token");
        assert!(
            r.body.contains("页面已过期"),
            "{path}: localized CSRF message"
        );
        let forged = format!("csrf_token={foreign}&{body}");
        assert_eq!(
            victim.post_raw(path, forged).await.status,
            403,
            "{path} with a foreign token"
        );
        let forged = format!("csrf_token=&{body}");
        assert_eq!(
            victim.post_raw(path, forged).await.status,
            403,
            "{path} with an empty token"
        );
    }
    // The avatar upload (multipart) too.
    let form = reqwest::multipart::Form::new()
        .text("csrf_token", foreign.clone())
        .part(
            "avatar",
            reqwest::multipart::Part::bytes(crate::flows::PNG.to_vec()).file_name("a.png"),
        );
    let r = Client::read(
        victim
            .http
            .post(format!("{}/settings/avatar", victim.base))
            .multipart(form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(before, (app.counts(), app.user_rows()));
    // Anonymous visitors' forms are protected as well.
    let anon = app.client();
    assert_eq!(
        anon.post_raw("/login", POST_ROUTES[1].1.to_string())
            .await
            .status,
        403
    );
    // The token of the victim's own session works, and is tied to that session.
    let own = victim.csrf().await;
    assert_ne!(own, foreign);
    victim
        .post(
            "/lang",
            &[("csrf_token", &own), ("lang", "en"), ("next", "/")],
        )
        .await
        .assert_status(303);
}

#[tokio::test]
async fn login_is_throttled_per_account_with_retry_after_and_same_answer_for_unknown_emails() {
    let app = spawn_app();
    let email = app.user("target", Role::Buyer);
    let c = app.client();
    let wrong_known = c.login(&email, "not-the-password-1").await;
    let wrong_unknown = c.login("ghost@example.com", "not-the-password-1").await;
    wrong_known.assert_status(422);
    wrong_unknown.assert_status(422);
    assert!(wrong_known.body.contains("邮箱或密码不正确"));
    let strip = |s: &str| {
        s.replace(&csrf_in(s), "")
            .replace(&email, "")
            .replace("ghost@example.com", "")
            .split("请求编号")
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        strip(&wrong_known.body),
        strip(&wrong_unknown.body),
        "no account enumeration"
    );
    for _ in 0..4 {
        c.login(&email, "not-the-password-1")
            .await
            .assert_status(422);
    }
    // Blocked now, even with the right password, from any client.
    let other = app.client();
    let r = other.login(&email, PASSWORD).await;
    r.assert_status(429);
    let retry: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    assert!(r.body.contains("操作太频繁"));
    // After the delay the right password works (no permanent lockout), and clears the counter.
    {
        use haodian::db::schema::login_throttle as lt;
        diesel::update(lt::table)
            .set(lt::blocked_until.eq(None::<chrono::NaiveDateTime>))
            .execute(&mut *app.conn())
            .unwrap();
    }
    other.login(&email, PASSWORD).await.assert_status(303);
    c.login(&email, "not-the-password-1")
        .await
        .assert_status(422);
}

#[tokio::test]
async fn login_is_throttled_per_client_address() {
    let app = spawn_app_with(|s| s.login_max_failures_ip = 3);
    let c = app.client();
    for i in 0..3 {
        c.login(&format!("nobody{i}@example.com"), "wrong-password-xyz")
            .await
            .assert_status(422);
    }
    let email = app.user("innocent", Role::Buyer);
    c.login(&email, PASSWORD).await.assert_status(429);
}

#[tokio::test]
async fn role_guards_for_every_route() {
    let app = spawn_app();
    let anon = app.client();
    let buyer = app.logged_in("buyer1", Role::Buyer).await;
    let merchant = app.logged_in("merchant1", Role::Merchant).await;
    let creator = app.logged_in("creator1", Role::Creator).await;
    let moderator = app.logged_in("moderator1", Role::Moderator).await;
    let admin = app.logged_in("admin1", Role::Admin).await;
    // (route, anonymous, buyer, merchant, creator, moderator, admin); 303 = to the login page or away.
    let matrix: &[(&str, [u16; 6])] = &[
        ("/", [200, 200, 200, 200, 200, 200]),
        ("/healthz", [200, 200, 200, 200, 200, 200]),
        ("/metrics", [200, 200, 200, 200, 200, 200]),
        ("/signup", [200, 303, 303, 303, 303, 303]),
        ("/login", [200, 303, 303, 303, 303, 303]),
        ("/password/forgot", [200, 200, 200, 200, 200, 200]),
        ("/settings", [303, 200, 200, 200, 200, 200]),
        ("/account", [303, 200, 200, 200, 200, 200]),
        ("/merchant", [303, 200, 200, 200, 200, 200]),
        ("/merchant/shop/open", [303, 200, 200, 200, 200, 200]),
        ("/merchant/shop", [303, 403, 403, 403, 403, 403]),
        ("/merchant/staff", [303, 403, 403, 403, 403, 403]),
        ("/merchant/authorizations", [303, 403, 403, 403, 403, 403]),
        ("/admin/shops", [303, 403, 403, 403, 200, 200]),
        ("/admin/review", [303, 403, 403, 403, 200, 200]),
        ("/admin/products", [303, 403, 403, 403, 200, 200]),
        ("/admin/categories", [303, 403, 403, 403, 403, 200]),
        ("/merchant/products", [303, 403, 403, 403, 403, 403]),
        ("/merchant/products/new", [303, 403, 403, 403, 403, 403]),
        (
            "/merchant/products/skus.csv",
            [303, 403, 403, 403, 403, 403],
        ),
        ("/search?q=茶", [200, 200, 200, 200, 200, 200]),
        ("/products/999999", [404, 404, 404, 404, 404, 404]),
        ("/@buyer1", [200, 200, 200, 200, 200, 200]),
        ("/@nobody_here", [404, 404, 404, 404, 404, 404]),
        ("/shops/no-such-shop", [404, 404, 404, 404, 404, 404]),
        ("/creator", [303, 403, 403, 200, 403, 403]),
        ("/admin", [303, 403, 403, 403, 200, 200]),
        ("/admin/users", [303, 403, 403, 403, 403, 200]),
        ("/admin/complaints", [303, 403, 403, 403, 200, 200]),
        ("/cart", [200, 200, 200, 200, 200, 200]),
        ("/checkout", [303, 200, 200, 200, 200, 200]),
        ("/addresses", [303, 200, 200, 200, 200, 200]),
        ("/orders", [303, 200, 200, 200, 200, 200]),
        ("/orders/2611300000000001", [303, 404, 404, 404, 404, 404]),
        ("/merchant/orders", [303, 403, 403, 403, 403, 403]),
        ("/merchant/refunds", [303, 403, 403, 403, 403, 403]),
        ("/merchant/complaints", [303, 403, 403, 403, 403, 403]),
        ("/merchant/ratings", [303, 403, 403, 403, 403, 403]),
        ("/merchant/dsr", [303, 403, 403, 403, 403, 403]),
        ("/admin/dsr", [303, 403, 403, 403, 200, 200]),
        ("/merchant/violations", [303, 403, 403, 403, 403, 403]),
        ("/merchant/violations/1", [303, 403, 403, 403, 403, 403]),
        ("/violations/1/evidence/1", [303, 404, 404, 404, 404, 404]),
        ("/admin/violations", [303, 403, 403, 403, 200, 200]),
        ("/admin/violations/new", [303, 403, 403, 403, 200, 200]),
        ("/admin/appeals", [303, 403, 403, 403, 200, 200]),
        ("/admin/appeals/1", [303, 403, 403, 403, 404, 404]),
        ("/admin/audit", [303, 403, 403, 403, 200, 200]),
        ("/admin/audit.csv", [303, 403, 403, 403, 200, 200]),
        ("/admin/shops/999999", [303, 403, 403, 403, 404, 404]),
        ("/admin/rules", [303, 403, 403, 403, 403, 200]),
        ("/settings/mfa", [303, 200, 200, 200, 200, 200]),
        ("/login/mfa", [303, 303, 303, 303, 303, 303]),
        ("/admin/rules/versions", [303, 403, 403, 403, 403, 200]),
        ("/admin/rules/versions/1", [303, 403, 403, 403, 403, 200]),
        (
            "/orders/2611300000000001/rate",
            [303, 404, 404, 404, 404, 404],
        ),
        ("/no-such-page", [404, 404, 404, 404, 404, 404]),
    ];
    let clients = [&anon, &buyer, &merchant, &creator, &moderator, &admin];
    for (route, expected) in matrix {
        for (who, (c, want)) in clients.iter().zip(expected).enumerate() {
            let r = c.get(route).await;
            assert_eq!(r.status, *want, "{route} as #{who}");
            if who == 0 && *want == 303 && !["/signup", "/login"].contains(route) {
                assert!(
                    r.location().starts_with("/login?next="),
                    "{route}: {}",
                    r.location()
                );
            }
            if *want == 403 {
                assert!(r.body.contains("无权访问"), "{route}: localized 403 page");
            }
        }
    }
    // Menus follow roles.
    assert!(admin.get("/").await.body.contains("href=\"/admin\""));
    assert!(!buyer.get("/").await.body.contains("href=\"/admin\""));
    assert!(merchant.get("/").await.body.contains("href=\"/merchant\""));
}

#[tokio::test]
async fn bad_input_on_every_form_is_a_4xx_with_a_message_and_writes_nothing() {
    let app = spawn_app();
    let existing = app.user("existing", Role::Buyer);
    let c = app.client();
    let long = "x".repeat(5000);
    let signup_cases: Vec<Vec<(&str, &str)>> = vec![
        vec![],
        vec![
            ("email", ""),
            ("handle", ""),
            ("display_name", ""),
            ("password", ""),
            ("password_confirm", ""),
        ],
        vec![
            ("email", "not-an-email"),
            ("handle", "ok_handle"),
            ("display_name", "A"),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ],
        vec![
            ("email", &existing),
            ("handle", "fresh_one"),
            ("display_name", "A"),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ],
        vec![
            ("email", "new@example.com"),
            ("handle", "existing"),
            ("display_name", "A"),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ],
        vec![
            ("email", "new@example.com"),
            ("handle", "9bad handle"),
            ("display_name", "A"),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ],
        vec![
            ("email", "new@example.com"),
            ("handle", "fine_handle"),
            ("display_name", &long),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ],
        vec![
            ("email", "new@example.com"),
            ("handle", "fine_handle"),
            ("display_name", "A"),
            ("password", "short"),
            ("password_confirm", "short"),
        ],
        vec![
            ("email", "new@example.com"),
            ("handle", "fine_handle"),
            ("display_name", "A"),
            ("password", &long),
            ("password_confirm", &long),
        ],
        vec![
            ("email", "new@example.com"),
            ("handle", "fine_handle"),
            ("display_name", "A"),
            ("password", PASSWORD),
            ("password_confirm", "other-thing-1234"),
        ],
        vec![
            ("email", &long),
            ("handle", &long),
            ("display_name", "A"),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ],
    ];
    let before = (app.counts(), app.user_rows());
    for fields in &signup_cases {
        let r = c.submit("/signup", "/signup", fields).await;
        assert_eq!(r.status, 422, "signup {fields:?}");
        assert!(
            r.body.contains("class=\"field-error\""),
            "field message for {fields:?}"
        );
    }
    // Duplicate keys and wrong shapes are refused whole.
    let token = c.csrf().await;
    let dup = format!("csrf_token={token}&email=a%40example.com&email=b%40example.com&handle=dupe&display_name=D&password={PASSWORD}&password_confirm={PASSWORD}");
    let r = c.post_raw("/signup", dup).await;
    r.assert_status(400);
    assert!(r.body.contains("表单格式不正确"));
    let r = c
        .post_raw("/signup", format!("csrf_token={token}&%ZZ=%%%"))
        .await;
    assert!(r.status == 400 || r.status == 422, "{}", r.status);
    // Huge bodies.
    let huge = format!("csrf_token={token}&bio={}", "y".repeat(200 * 1024));
    let r = c.post_raw("/signup", huge).await;
    r.assert_status(413);
    assert!(r.body.contains("内容过大"));
    // Login, forgot, reset, language with bad input.
    c.submit("/login", "/login", &[("email", ""), ("password", "")])
        .await
        .assert_status(422);
    c.submit("/login", "/login", &[("email", &long), ("password", &long)])
        .await
        .assert_status(422);
    let r = c
        .submit("/password/forgot", "/password/forgot", &[("email", "nope")])
        .await;
    r.assert_status(422);
    assert!(r.body.contains("有效的邮箱"));
    let r = c
        .submit(
            "/login",
            "/password/reset",
            &[
                ("token", "garbage"),
                ("password", PASSWORD),
                ("password_confirm", PASSWORD),
            ],
        )
        .await;
    assert!(r.body.contains("重置链接无效或已过期"));
    c.submit("/login", "/lang", &[("lang", "klingon"), ("next", "/")])
        .await
        .assert_status(400);
    // Settings forms.
    c.login(&existing, PASSWORD).await.assert_status(303);
    let after_login = (app.counts(), app.user_rows());
    for fields in [
        vec![("display_name", ""), ("bio", ""), ("locale", "")],
        vec![("display_name", long.as_str()), ("bio", ""), ("locale", "")],
        vec![
            ("display_name", "ok"),
            ("bio", long.as_str()),
            ("locale", ""),
        ],
        vec![("display_name", "ok"), ("bio", ""), ("locale", "xx-YY")],
    ] {
        let r = c.submit("/settings", "/settings/profile", &fields).await;
        assert_eq!(r.status, 422, "profile {fields:?}");
        assert!(r.body.contains("class=\"field-error\""));
    }
    for fields in [
        vec![
            ("current_password", ""),
            ("password", ""),
            ("password_confirm", ""),
        ],
        vec![
            ("current_password", PASSWORD),
            ("password", "short"),
            ("password_confirm", "short"),
        ],
        vec![
            ("current_password", PASSWORD),
            ("password", long.as_str()),
            ("password_confirm", long.as_str()),
        ],
    ] {
        assert_eq!(
            c.submit("/settings", "/settings/password", &fields)
                .await
                .status,
            422
        );
    }
    for fields in [
        vec![("current_password", PASSWORD), ("new_email", "")],
        vec![("current_password", PASSWORD), ("new_email", long.as_str())],
    ] {
        assert_eq!(
            c.submit("/settings", "/settings/email", &fields)
                .await
                .status,
            422
        );
    }
    let r = crate::flows::upload_avatar(&c, "empty.png", vec![], "image/png").await;
    r.assert_status(422);
    let token = csrf_in(&c.get("/settings").await.body);
    let r = Client::read(
        c.http
            .post(format!("{}/settings/avatar", c.base))
            .header("content-type", "multipart/form-data; boundary=zzz")
            .body(format!("--zzz\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{token}\r\n--zzz\r\nbroken"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(
        (400..500).contains(&r.status),
        "broken multipart: {}",
        r.status
    );
    let huge = vec![0u8; 9 * 1024 * 1024];
    assert_eq!(
        crate::flows::upload_avatar(&c, "huge.png", huge, "image/png")
            .await
            .status,
        413
    );
    assert_eq!(after_login, (app.counts(), app.user_rows()));
    // Before login nothing was written either (apart from the login that followed).
    assert_eq!(before.1, after_login.1);
}

#[tokio::test]
async fn names_with_markup_render_escaped() {
    let app = spawn_app();
    let c = app.client();
    let xss = "<script>alert(1)</script>";
    let email = "xss@example.com";
    let r = c
        .submit(
            "/signup",
            "/signup",
            &[
                ("email", email),
                ("handle", "xss_user"),
                ("display_name", xss),
                ("password", PASSWORD),
                ("password_confirm", PASSWORD),
            ],
        )
        .await;
    r.assert_status(303);
    let page = c.get("/settings").await;
    assert!(!page.body.contains(xss));
    assert!(
        page.body
            .contains("&#60;script&#62;alert(1)&#60;/script&#62;")
            || page.body.contains("&lt;script&gt;")
    );
    c.submit(
        "/settings",
        "/settings/profile",
        &[
            ("display_name", "\"><img src=x onerror=alert(1)>"),
            ("bio", xss),
            ("locale", ""),
        ],
    )
    .await
    .assert_status(303);
    let page = c.get("/settings").await;
    assert!(!page.body.contains("<img src=x"));
    assert!(!page.body.contains(xss));
    // A bad-input re-render escapes what was typed too.
    let r = c
        .submit(
            "/password/forgot",
            "/password/forgot",
            &[("email", "\"><script>x</script>")],
        )
        .await;
    assert!(!r.body.contains("<script>x</script>"));
}

#[tokio::test]
async fn stored_password_hash_is_argon2id_with_owasp_parameters() {
    let app = spawn_app();
    let c = app.client();
    let (email, r) = signup(&c, "hashed").await;
    r.assert_status(303);
    let hash: String = users::table
        .filter(users::email.eq(&email))
        .select(users::password_hash)
        .first(&mut *app.conn())
        .unwrap();
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert!(!hash.contains(PASSWORD));
}

#[tokio::test]
async fn old_hash_parameters_are_upgraded_at_login() {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let app = spawn_app();
    let email = app.user("legacy", Role::Buyer);
    let weak = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(4096, 1, 1, None).unwrap(),
    )
    .hash_password(PASSWORD.as_bytes(), &SaltString::generate(&mut OsRng))
    .unwrap()
    .to_string();
    diesel::update(users::table.filter(users::email.eq(&email)))
        .set(users::password_hash.eq(&weak))
        .execute(&mut *app.conn())
        .unwrap();
    app.client()
        .login(&email, PASSWORD)
        .await
        .assert_status(303);
    let hash: String = users::table
        .filter(users::email.eq(&email))
        .select(users::password_hash)
        .first(&mut *app.conn())
        .unwrap();
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
}

#[tokio::test]
async fn security_headers_and_cookie_flags_on_every_response() {
    let app = spawn_app();
    let c = app.client();
    for path in [
        "/",
        "/login",
        "/no-such-page",
        "/static/app.css",
        "/healthz",
    ] {
        let r = c.get(path).await;
        let csp = r.header("content-security-policy").unwrap_or_default();
        assert!(
            csp.contains("default-src 'self'")
                && csp.contains("frame-ancestors 'none'")
                && !csp.contains("unsafe-inline"),
            "{path}: {csp}"
        );
        assert_eq!(
            r.header("x-content-type-options").as_deref(),
            Some("nosniff"),
            "{path}"
        );
        assert!(r.header("referrer-policy").is_some(), "{path}");
        assert_eq!(r.header("x-frame-options").as_deref(), Some("DENY"));
        assert_eq!(
            r.header("x-request-id").map(|v| v.len()),
            Some(16),
            "{path}"
        );
    }
    let email = app.user("cookies", Role::Buyer);
    let r = c.login(&email, PASSWORD).await;
    let set = r
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with("hd_sid="))
        .unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax"),
        "{set}"
    );
    assert!(!set.contains("Secure"), "plain http: no Secure flag");
    // Behind TLS (as a proxy reports it) the cookie is Secure.
    let c2 = app.client();
    let token = csrf_in(&c2.get("/login").await.body);
    let r = Client::read(
        c2.http
            .post(format!("{}/login", c2.base))
            .header("x-forwarded-proto", "https")
            .form(&[
                ("csrf_token", token.as_str()),
                ("email", email.as_str()),
                ("password", PASSWORD),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    let set = r
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with("hd_sid="))
        .unwrap();
    assert!(set.contains("Secure"), "{set}");
}

#[tokio::test]
async fn error_pages_are_localized_and_show_the_request_id_not_internals() {
    let app = spawn_app();
    let c = app.client();
    let r = c.get("/no-such-page").await;
    r.assert_status(404);
    let id = r.header("x-request-id").unwrap();
    assert!(r.body.contains("页面不存在") && r.body.contains(&id));
    let r = c
        .get_with("/no-such-page", &[("accept-language", "en")])
        .await;
    assert!(r.body.contains("Not found"));
    let r = c.get("/media/not-a-number").await;
    r.assert_status(404);
    let r = Client::read(
        c.http
            .delete(format!("{}/login", c.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(r.status == 404 || r.status == 405, "{}", r.status);
    assert!(r.body.contains("<html"));
}

#[tokio::test]
async fn only_admins_manage_roles_and_every_change_is_audited() {
    use haodian::db::schema::{audit_log, sessions, user_roles};
    let app = spawn_app();
    let admin = app.logged_in("boss", Role::Admin).await;
    let moderator = app.logged_in("mod_a", Role::Moderator).await;
    let buyer_email = app.user("helper", Role::Buyer);
    let buyer_id: i64 = users::table
        .filter(users::email.eq(&buyer_email))
        .select(users::id)
        .first(&mut *app.conn())
        .unwrap();
    let boss_id: i64 = users::table
        .filter(users::handle.eq("boss"))
        .select(users::id)
        .first(&mut *app.conn())
        .unwrap();

    // A moderator can neither see the page nor post to it.
    moderator.get("/admin/users").await.assert_status(403);
    let token = moderator.csrf().await;
    moderator
        .post(
            &format!("/admin/users/{buyer_id}/roles"),
            &[("csrf_token", &token), ("role", "admin")],
        )
        .await
        .assert_status(403);
    assert!(
        haodian::accounts::service::roles_of(&mut app.conn(), buyer_id)
            .unwrap()
            .is_empty()
    );

    // The admin grants moderator: the account now reaches /admin.
    let page = admin.get("/admin/users?q=HELP").await;
    page.assert_status(200);
    assert!(
        page.body.contains("@helper") && !page.body.contains("@boss"),
        "search by handle, case-insensitive"
    );
    let r = admin
        .submit(
            "/admin/users",
            &format!("/admin/users/{buyer_id}/roles"),
            &[("role", "moderator"), ("back", "/admin/users?q=help")],
        )
        .await;
    r.assert_status(303);
    assert_eq!(r.location(), "/admin/users?q=help");
    let helper = app.client();
    helper
        .login(&buyer_email, PASSWORD)
        .await
        .assert_status(303);
    helper.get("/admin").await.assert_status(200);
    // Granting twice is a clear conflict; unknown roles are refused.
    let r = admin
        .submit(
            "/admin/users",
            &format!("/admin/users/{buyer_id}/roles"),
            &[("role", "moderator")],
        )
        .await;
    r.assert_status(409);
    assert!(r.body.contains("已经拥有"));
    admin
        .submit(
            "/admin/users",
            &format!("/admin/users/{buyer_id}/roles"),
            &[("role", "buyer")],
        )
        .await
        .assert_status(400);
    admin
        .submit(
            "/admin/users",
            "/admin/users/999999/roles",
            &[("role", "creator")],
        )
        .await
        .assert_status(404);

    // Revoking a staff role ends that account's sessions at once.
    admin
        .submit(
            "/admin/users",
            &format!("/admin/users/{buyer_id}/roles/revoke"),
            &[("role", "moderator")],
        )
        .await
        .assert_status(303);
    helper.get("/admin").await.assert_status(303);
    let left: i64 = sessions::table
        .filter(sessions::user_id.eq(buyer_id))
        .count()
        .get_result(&mut *app.conn())
        .unwrap();
    assert_eq!(left, 0);
    // An admin can not remove their own admin role.
    let r = admin
        .submit(
            "/admin/users",
            &format!("/admin/users/{boss_id}/roles/revoke"),
            &[("role", "admin")],
        )
        .await;
    r.assert_status(409);
    assert!(
        haodian::accounts::service::roles_of(&mut app.conn(), boss_id)
            .unwrap()
            .contains(&Role::Admin)
    );

    let actions: Vec<(Option<i64>, String, Option<i64>, String)> = audit_log::table
        .filter(audit_log::action.like("role.%"))
        .order(audit_log::id)
        .select((
            audit_log::actor_user_id,
            audit_log::action,
            audit_log::subject_id,
            audit_log::detail,
        ))
        .load(&mut *app.conn())
        .unwrap();
    assert_eq!(
        actions,
        vec![
            (
                Some(boss_id),
                "role.grant".to_string(),
                Some(buyer_id),
                "moderator".to_string()
            ),
            (
                Some(boss_id),
                "role.revoke".to_string(),
                Some(buyer_id),
                "moderator".to_string()
            ),
        ]
    );
    let held: i64 = user_roles::table
        .filter(user_roles::user_id.eq(buyer_id))
        .count()
        .get_result(&mut *app.conn())
        .unwrap();
    assert_eq!(held, 0);
}

#[tokio::test]
async fn the_account_list_is_paginated() {
    let app = spawn_app();
    let admin = app.logged_in("chief", Role::Admin).await;
    for i in 0..45 {
        app.user(&format!("member{i:02}"), Role::Buyer);
    }
    let first = admin.get("/admin/users").await;
    first.assert_status(200);
    assert!(first.body.contains("共 46 个账号"));
    assert!(
        first.body.contains("@member44") && !first.body.contains("@member20"),
        "newest first, 20 a page"
    );
    assert!(first.body.contains("第 1 / 3 页"));
    let third = admin.get("/admin/users?page=3").await;
    assert!(third.body.contains("@member00") && third.body.contains("@chief"));
    assert!(!third.body.contains("下一页"));
    let beyond = admin.get("/admin/users?page=99").await;
    beyond.assert_status(200);
    assert!(beyond.body.contains("没有找到匹配的账号"));
    let none = admin.get("/admin/users?q=%25%5F").await;
    assert!(
        none.body.contains("没有找到匹配的账号"),
        "LIKE wildcards are escaped"
    );
    admin.get("/admin/users?page=abc").await.assert_status(400);
}

/// The current TOTP code of a base32 secret, `ahead` steps from now.
fn totp(secret: &str, ahead: i64) -> String {
    use haodian::accounts::totp;
    let key = totp::base32_decode(secret).unwrap();
    totp::code_at(&key, totp::step_of(chrono::Utc::now().timestamp()) + ahead)
}

#[tokio::test]
async fn two_step_verification_guards_governance_when_required_and_codes_work_once() {
    let app = spawn_app_with(|s| s.require_mfa = true);
    let mo = app.logged_in("mf_mod", Role::Moderator).await;
    let buyer = app.logged_in("mf_buyer", Role::Buyer).await;
    // Required: without a second factor the governance pages say what to do.
    let r = mo.get("/admin").await;
    r.assert_status(403);
    assert!(r.body.contains("/settings/mfa"), "{}", r.body);
    // Until then the account holds no moderator role anywhere (no console link either).
    assert!(!mo.get("/").await.body.contains("href=\"/admin\""));
    buyer.get("/orders").await.assert_status(200);

    // Turning it on: a wrong code is refused, the right one verifies this session.
    let page = mo.get("/settings/mfa").await;
    let secret = page
        .body
        .split("id=\"mfa-secret\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap()
        .to_string();
    let r = mo
        .submit(
            "/settings/mfa",
            "/settings/mfa/enable",
            &[("secret", &secret), ("code", "000000")],
        )
        .await;
    r.assert_status(422);
    let first = totp(&secret, 0);
    mo.submit(
        "/settings/mfa",
        "/settings/mfa/enable",
        &[("secret", &secret), ("code", &first)],
    )
    .await
    .assert_status(303);
    mo.get("/admin").await.assert_status(200);
    assert!(mo.get("/").await.body.contains("href=\"/admin\""));
    let enabled: i64 = haodian::db::schema::audit_log::table
        .filter(haodian::db::schema::audit_log::action.eq("mfa.enable"))
        .count()
        .get_result(&mut *app.conn())
        .unwrap();
    assert_eq!(enabled, 1);

    // Logging in again takes two steps; in between the session reaches nothing.
    mo.logout().await;
    let r = mo.login("mf_mod@example.com", PASSWORD).await;
    r.assert_status(303);
    assert!(r.location().starts_with("/login/mfa"), "{}", r.location());
    let r = mo.get("/admin").await;
    r.assert_status(303);
    assert!(mo.get("/login").await.location().starts_with("/login/mfa"));
    // The code already used is refused (replay); a fresh one lets the moderator in.
    let r = mo
        .submit(
            "/login/mfa",
            "/login/mfa",
            &[("code", &first), ("next", "/admin")],
        )
        .await;
    r.assert_status(422);
    let r = mo
        .submit(
            "/login/mfa",
            "/login/mfa",
            &[("code", &totp(&secret, 1)), ("next", "/admin")],
        )
        .await;
    r.assert_status(303);
    assert_eq!(r.location(), "/admin");
    mo.get("/admin").await.assert_status(200);
}

#[tokio::test]
async fn non_moderators_posting_to_governance_routes_with_a_valid_token_get_403_and_change_nothing()
{
    let app = spawn_app();
    let buyer = app.logged_in("gp_buyer", Role::Buyer).await;
    let merchant = app.logged_in("gp_merchant", Role::Merchant).await;
    let creator = app.logged_in("gp_creator", Role::Creator).await;
    let moderator = app.logged_in("gp_mod", Role::Moderator).await;
    let before = app.counts();
    let moderator_routes: &[(&str, &[(&str, &str)])] = &[
        (
            "/admin/appeals/1/decide",
            &[("verdict", "revoke"), ("reason", "because so")],
        ),
        ("/admin/shops/1/suspend", &[("reason", "because so")]),
        ("/admin/shops/1/reinstate", &[("reason", "because so")]),
    ];
    let admin_routes: &[(&str, &[(&str, &str)])] = &[
        (
            "/admin/shops/1/clear",
            &[("confirm", "x"), ("reason", "because so")],
        ),
        (
            "/admin/rules/terms",
            &[
                ("term", "x"),
                ("match_type", "substring"),
                ("scope", "all"),
                ("severity", "block"),
                ("legal_basis", "xx"),
            ],
        ),
        ("/admin/rules/terms/1/delete", &[]),
        (
            "/admin/rules/params",
            &[("key", "appeal_days"), ("value", "3")],
        ),
        (
            "/admin/rules/types",
            &[
                ("code", "evil_type"),
                ("name_zh", "x"),
                ("name_en", "x"),
                ("track", "general"),
                ("points", "1"),
            ],
        ),
        ("/admin/rules/types/fraud/retire", &[]),
        (
            "/admin/rules/nodes",
            &[
                ("track", "general"),
                ("threshold", "1"),
                ("action", "clear"),
            ],
        ),
        ("/admin/rules/nodes/1/delete", &[]),
        ("/admin/rules/score", &[("score", "{}")]),
    ];
    for (route, fields) in moderator_routes.iter().chain(admin_routes) {
        for c in [&buyer, &merchant, &creator] {
            c.submit("/", route, fields).await.assert_status(403);
        }
    }
    for (route, fields) in admin_routes {
        moderator
            .submit("/", route, fields)
            .await
            .assert_status(403);
    }
    // The recording form is multipart: the same answer.
    for c in [&buyer, &merchant, &creator] {
        submit_multipart(
            c,
            "/",
            "/admin/violations",
            &[
                ("shop", "x"),
                ("type_id", "1"),
                ("description", "made up violation"),
            ],
            &[],
        )
        .await
        .assert_status(403);
    }
    assert_eq!(app.counts(), before);
}
