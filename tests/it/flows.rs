//! Account flows a user goes through, over HTTP.

use crate::common::*;
use diesel::prelude::*;
use haodian::db::schema::{sessions, users};

#[tokio::test]
async fn signup_verify_login_settings_logout() {
    let app = spawn_app();
    let c = app.client();
    let (email, r) = signup(&c, "meili").await;
    r.assert_status(303);
    assert_eq!(r.location(), "/");
    // Signed in straight away, with the unverified banner and a welcome message.
    let home = c.get("/").await;
    assert!(home.body.contains("Name meili"), "user menu shows the name");
    assert!(home.body.contains("/verify/resend"), "unverified banner");
    assert!(home.body.contains("注册成功"), "flash shown once");
    assert!(
        !c.get("/").await.body.contains("注册成功"),
        "flash gone on the next page"
    );

    // Verify through the emailed link.
    let (subject, _) = app.last_mail(&email).expect("verification email queued");
    assert!(subject.contains("验证"), "{subject}");
    let link = app.mail_link(&email);
    assert!(link.starts_with("/verify?token="), "{link}");
    c.get(&link).await.assert_status(200);
    let verified: Option<chrono::NaiveDateTime> = users::table
        .filter(users::email.eq(&email))
        .select(users::email_verified_at)
        .first(&mut *app.conn())
        .unwrap();
    assert!(verified.is_some());
    assert!(
        !c.get("/").await.body.contains("/verify/resend"),
        "banner gone"
    );
    // The link is single-use.
    assert!(c.get(&link).await.body.contains("链接无效或已过期"));

    // Log out, log in again, change settings.
    c.logout().await.assert_status(303);
    assert!(!c.get("/").await.body.contains("Name meili"));
    let r = c.login(&email, PASSWORD).await;
    r.assert_status(303);
    let r = c
        .submit(
            "/settings",
            "/settings/profile",
            &[
                ("display_name", "美丽小店"),
                ("bio", "卖茶\n也卖茶具"),
                ("locale", "en"),
            ],
        )
        .await;
    r.assert_status(303);
    assert_eq!(r.location(), "/settings");
    let page = c.get("/settings").await;
    page.assert_status(200);
    assert!(page.body.contains("美丽小店"));
    assert!(
        page.body.contains("Profile saved."),
        "language switched to English by the setting"
    );
    assert!(page.body.contains("<html lang=\"en\">"));
    c.logout().await.assert_status(303);
}

#[tokio::test]
async fn logout_revokes_the_session_so_a_replayed_cookie_is_anonymous() {
    let app = spawn_app();
    let c = app
        .logged_in("replay", haodian::accounts::Role::Buyer)
        .await;
    let sid = c.cookie("hd_sid").expect("session cookie");
    assert_eq!(sid.len(), 64);
    // The database keeps only a hash of the cookie.
    let stored: Vec<String> = sessions::table
        .select(sessions::token_hash)
        .load(&mut *app.conn())
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], sid);
    c.logout().await.assert_status(303);
    assert_eq!(
        sessions::table
            .count()
            .get_result::<i64>(&mut *app.conn())
            .unwrap(),
        0
    );
    // Replay the old cookie from a fresh client.
    let thief = app.client();
    let r = thief
        .get_with("/settings", &[("cookie", &format!("hd_sid={sid}"))])
        .await;
    r.assert_status(303);
    assert!(
        r.location().starts_with("/login?next=%2Fsettings"),
        "{}",
        r.location()
    );
}

#[tokio::test]
async fn login_issues_a_new_session_id_each_time() {
    let app = spawn_app();
    let email = app.user("rotate", haodian::accounts::Role::Buyer);
    let c = app.client();
    c.login(&email, PASSWORD).await.assert_status(303);
    let first = c.cookie("hd_sid").unwrap();
    // Logging in again from the same browser replaces the session.
    let token = c.csrf().await;
    c.post(
        "/login",
        &[
            ("csrf_token", &token),
            ("email", &email),
            ("password", PASSWORD),
        ],
    )
    .await
    .assert_status(303);
    let second = c.cookie("hd_sid").unwrap();
    assert_ne!(first, second);
    assert_eq!(
        sessions::table
            .count()
            .get_result::<i64>(&mut *app.conn())
            .unwrap(),
        1,
        "old session ended"
    );
}

#[tokio::test]
async fn idle_and_absolute_timeouts_end_sessions() {
    let app = spawn_app();
    let c = app
        .logged_in("sleepy", haodian::accounts::Role::Buyer)
        .await;
    c.get("/settings").await.assert_status(200);
    // Idle longer than allowed.
    let long_ago = chrono::Utc::now().naive_utc() - chrono::Duration::days(3);
    diesel::update(sessions::table)
        .set(sessions::last_seen_at.eq(long_ago))
        .execute(&mut *app.conn())
        .unwrap();
    c.get("/settings").await.assert_status(303);

    let c2 = app.client();
    c2.login("sleepy@example.com", PASSWORD)
        .await
        .assert_status(303);
    c2.get("/settings").await.assert_status(200);
    let past = chrono::Utc::now().naive_utc() - chrono::Duration::seconds(1);
    diesel::update(sessions::table)
        .set(sessions::expires_at.eq(past))
        .execute(&mut *app.conn())
        .unwrap();
    c2.get("/settings").await.assert_status(303);
}

#[tokio::test]
async fn password_reset_is_single_use_expires_and_ends_all_sessions() {
    let app = spawn_app();
    let email = app.user("forgetful", haodian::accounts::Role::Buyer);
    let laptop = app.client();
    laptop.login(&email, PASSWORD).await.assert_status(303);

    let anon = app.client();
    // Unknown and known emails get the same answer.
    let unknown = anon
        .submit(
            "/password/forgot",
            "/password/forgot",
            &[("email", "nobody@example.com")],
        )
        .await;
    let known = anon
        .submit("/password/forgot", "/password/forgot", &[("email", &email)])
        .await;
    unknown.assert_status(200);
    known.assert_status(200);
    let strip = |s: &str| {
        s.replace(&csrf_in(s), "")
            .split("请求编号")
            .next()
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(strip(&unknown.body), strip(&known.body));
    assert!(app.last_mail("nobody@example.com").is_none());

    let link = app.mail_link(&email);
    assert!(link.starts_with("/password/reset?token="));
    let token = link.split("token=").nth(1).unwrap().to_string();
    anon.get(&link).await.assert_status(200);
    // A weak password is refused with a message and changes nothing.
    let before = app.user_rows();
    let r = anon
        .submit(
            &link,
            "/password/reset",
            &[
                ("token", &token),
                ("password", "password1234"),
                ("password_confirm", "password1234"),
            ],
        )
        .await;
    r.assert_status(422);
    assert!(r.body.contains("太常见"));
    assert_eq!(before, app.user_rows());

    let new_pw = "lantern-orchard-quiet-91";
    let r = anon
        .submit(
            &link,
            "/password/reset",
            &[
                ("token", &token),
                ("password", new_pw),
                ("password_confirm", new_pw),
            ],
        )
        .await;
    r.assert_status(303);
    assert_eq!(r.location(), "/login");
    // Every session of the account ended.
    laptop.get("/settings").await.assert_status(303);
    // Single use.
    let again = anon
        .submit(
            "/password/forgot",
            "/password/reset",
            &[
                ("token", &token),
                ("password", "another-good-pass-77"),
                ("password_confirm", "another-good-pass-77"),
            ],
        )
        .await;
    assert!(again.body.contains("重置链接无效或已过期"));
    assert!(
        anon.login(&email, PASSWORD).await.status == 422,
        "old password no longer works"
    );
    anon.login(&email, new_pw).await.assert_status(303);
    assert!(app.last_mail(&email).unwrap().0.contains("密码已修改"));

    // An expired link is refused.
    anon.submit("/password/forgot", "/password/forgot", &[("email", &email)])
        .await
        .assert_status(200);
    let link2 = app.mail_link(&email);
    {
        use haodian::db::schema::email_tokens as et;
        let past = chrono::Utc::now().naive_utc() - chrono::Duration::minutes(31);
        diesel::update(et::table.filter(et::used_at.is_null()))
            .set(et::expires_at.eq(past))
            .execute(&mut *app.conn())
            .unwrap();
    }
    assert!(anon.get(&link2).await.body.contains("重置链接无效或已过期"));
}

#[tokio::test]
async fn change_password_needs_the_current_one_and_ends_other_sessions() {
    let app = spawn_app();
    let email = app.user("changer", haodian::accounts::Role::Buyer);
    let phone = app.client();
    phone.login(&email, PASSWORD).await.assert_status(303);
    let desk = app.client();
    desk.login(&email, PASSWORD).await.assert_status(303);
    let new_pw = "copper-kettle-morning-58";
    let r = desk
        .submit(
            "/settings",
            "/settings/password",
            &[
                ("current_password", "wrong-password-123"),
                ("password", new_pw),
                ("password_confirm", new_pw),
            ],
        )
        .await;
    r.assert_status(422);
    assert!(r.body.contains("当前密码不正确"));
    let r = desk
        .submit(
            "/settings",
            "/settings/password",
            &[
                ("current_password", PASSWORD),
                ("password", new_pw),
                ("password_confirm", "different-one-000"),
            ],
        )
        .await;
    r.assert_status(422);
    assert!(r.body.contains("两次输入的密码不一致"));
    desk.submit(
        "/settings",
        "/settings/password",
        &[
            ("current_password", PASSWORD),
            ("password", new_pw),
            ("password_confirm", new_pw),
        ],
    )
    .await
    .assert_status(303);
    desk.get("/settings").await.assert_status(200);
    phone.get("/settings").await.assert_status(303);
    let hash: String = users::table
        .filter(users::email.eq(&email))
        .select(users::password_hash)
        .first(&mut *app.conn())
        .unwrap();
    assert!(haodian::accounts::password::verify(new_pw, &hash));
}

#[tokio::test]
async fn change_email_is_confirmed_from_the_new_address() {
    let app = spawn_app();
    let email = app.user("mover", haodian::accounts::Role::Buyer);
    let taken = app.user("squatter", haodian::accounts::Role::Buyer);
    let c = app.client();
    c.login(&email, PASSWORD).await.assert_status(303);
    let r = c
        .submit(
            "/settings",
            "/settings/email",
            &[("current_password", PASSWORD), ("new_email", &taken)],
        )
        .await;
    r.assert_status(422);
    assert!(r.body.contains("该邮箱已注册"));
    let r = c
        .submit(
            "/settings",
            "/settings/email",
            &[
                ("current_password", "nope-nope-nope"),
                ("new_email", "new@example.com"),
            ],
        )
        .await;
    r.assert_status(422);
    c.submit(
        "/settings",
        "/settings/email",
        &[
            ("current_password", PASSWORD),
            ("new_email", "New@Example.com"),
        ],
    )
    .await
    .assert_status(303);
    // Nothing changes until the link is opened.
    assert_eq!(
        users::table
            .filter(users::email.eq(&email))
            .count()
            .get_result::<i64>(&mut *app.conn())
            .unwrap(),
        1
    );
    let link = app.mail_link("new@example.com");
    c.get(&link).await.assert_status(200);
    assert_eq!(
        users::table
            .filter(users::email.eq("new@example.com"))
            .count()
            .get_result::<i64>(&mut *app.conn())
            .unwrap(),
        1
    );
    assert!(
        app.last_mail(&email).unwrap().0.contains("邮箱已更换"),
        "old address told"
    );
    c.logout().await;
    c.login("new@example.com", PASSWORD)
        .await
        .assert_status(303);
}

/// A 1×1 PNG.
pub const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0xF8, 0xCF, 0xC0, 0xF0,
    0x1F, 0x00, 0x05, 0x00, 0x01, 0xFF, 0x89, 0x99, 0x3D, 0x1D, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
];

pub async fn upload_avatar(c: &Client, name: &str, bytes: Vec<u8>, mime: &str) -> Resp {
    let token = csrf_in(&c.get("/settings").await.body);
    let part = reqwest::multipart::Part::bytes(bytes)
        .file_name(name.to_string())
        .mime_str(mime)
        .unwrap();
    let form = reqwest::multipart::Form::new()
        .text("csrf_token", token)
        .part("avatar", part);
    Client::read(
        c.http
            .post(format!("{}/settings/avatar", c.base))
            .multipart(form)
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn avatar_upload_is_checked_by_content_and_size() {
    let app = spawn_app();
    let c = app
        .logged_in("pictured", haodian::accounts::Role::Buyer)
        .await;
    let before = app.counts();
    // A script with an image name and type is refused by its content.
    let r = upload_avatar(
        &c,
        "cat.png",
        b"<script>alert(1)</script>".to_vec(),
        "image/png",
    )
    .await;
    r.assert_status(422);
    assert!(r.body.contains("只支持 PNG"));
    // Too large.
    let mut big = PNG.to_vec();
    big.resize(2 * 1024 * 1024 + 1, 0);
    let r = upload_avatar(&c, "big.png", big, "image/png").await;
    r.assert_status(422);
    assert!(r.body.contains("不能超过 2 MB"));
    assert_eq!(before, app.counts());
    // A real PNG, even sent as octet-stream, is stored and served with its real type.
    upload_avatar(&c, "me.bin", PNG.to_vec(), "application/octet-stream")
        .await
        .assert_status(303);
    let page = c.get("/settings").await;
    let src_start = page.body.find("src=\"/media/").expect("avatar shown") + 5;
    let src = page.body[src_start..]
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let img = c.get(&src).await;
    img.assert_status(200);
    assert_eq!(img.header("content-type").as_deref(), Some("image/png"));
    assert_eq!(
        img.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
}

#[tokio::test]
async fn language_follows_setting_then_cookie_then_accept_language() {
    let app = spawn_app();
    let c = app.client();
    assert!(
        c.get("/login").await.body.contains("<html lang=\"zh-CN\">"),
        "default zh-CN"
    );
    let en = c
        .get_with("/login", &[("accept-language", "en-US,en;q=0.9")])
        .await;
    assert!(en.body.contains("<html lang=\"en\">"));
    assert!(en.body.contains("Log in"));
    // The switch sets a cookie, which beats Accept-Language.
    let token = csrf_in(&c.get("/").await.body);
    let r = c
        .post(
            "/lang",
            &[("csrf_token", &token), ("lang", "en"), ("next", "/login")],
        )
        .await;
    r.assert_status(303);
    assert_eq!(r.location(), "/login");
    let page = c.get_with("/login", &[("accept-language", "zh-CN")]).await;
    assert!(page.body.contains("<html lang=\"en\">"));
    // An open redirect through `next` is refused.
    let token = csrf_in(&c.get("/").await.body);
    let r = c
        .post(
            "/lang",
            &[
                ("csrf_token", &token),
                ("lang", "zh-CN"),
                ("next", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!(r.location(), "/");
    // A signed-in user's own setting wins over the cookie.
    let email = app.user("zhuser", haodian::accounts::Role::Buyer);
    c.login(&email, PASSWORD).await.assert_status(303);
    c.submit(
        "/settings",
        "/settings/profile",
        &[("display_name", "zh"), ("bio", ""), ("locale", "zh-CN")],
    )
    .await
    .assert_status(303);
    c.jar
        .add_cookie_str("hd_lang=en; Path=/", &c.base.parse().unwrap());
    assert_eq!(c.cookie("hd_lang").as_deref(), Some("en"));
    let page = c.get("/settings").await;
    assert!(page.body.contains("<html lang=\"zh-CN\">"));
}
