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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_signs_up_logs_in_and_switches_language() {
    let required = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
        || std::env::var("HAODIAN_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
    let Some(driver_bin) = chromedriver() else {
        assert!(!required, "chromedriver is required (CI / HAODIAN_REQUIRE_BROWSER) but not installed: apt-get install chromium chromium-driver");
        eprintln!("NOT RUN: browser test skipped, chromedriver not installed (apt-get install chromium chromium-driver)");
        return;
    };
    let app = spawn_app();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _driver = Driver(
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
    let mut client = None;
    for _ in 0..50 {
        match ClientBuilder::native()
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => {
                client = Some(c);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    let b = client.expect("chromedriver session");
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
