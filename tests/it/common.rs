//! Test harness: spawns the real app on a random port against a fresh database (SQLite file,
//! or with TEST_DATABASE_URL a new PostgreSQL database per test) and drives it over HTTP with a
//! cookie jar, reading CSRF tokens from the forms as a browser would.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use diesel::prelude::*;
use haodian::accounts::{service, Role};
use haodian::app::{self, BuildOptions};
use haodian::config::Settings;
use haodian::db::Pool;

pub const PASSWORD: &str = "violet-harbor-train-42";
pub const BASE_URL: &str = "http://test.invalid";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A unique name for this process and call.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// The PostgreSQL server to test against, when asked for. A set but unreachable
/// TEST_DATABASE_URL fails the test: the PostgreSQL run must really happen.
pub fn pg_url() -> Option<String> {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres"))
}

/// A fresh, empty database URL for one test (and its cleanup).
pub struct TestDb {
    pub url: String,
    pg_admin: Option<(String, String)>,
    dir: std::path::PathBuf,
}

impl TestDb {
    pub fn new() -> TestDb {
        let dir = std::env::temp_dir().join(unique("haodian_test"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        match pg_url() {
            Some(admin) => {
                let name = unique("hd_t");
                let mut c = diesel::PgConnection::establish(&admin).unwrap_or_else(|e| {
                    panic!("TEST_DATABASE_URL is set but PostgreSQL is unreachable: {e}")
                });
                diesel::sql_query(format!("CREATE DATABASE {name}"))
                    .execute(&mut c)
                    .expect("create database");
                let mut u = url::Url::parse(&admin).expect("TEST_DATABASE_URL");
                u.set_path(&name);
                TestDb {
                    url: u.to_string(),
                    pg_admin: Some((admin, name)),
                    dir,
                }
            }
            None => TestDb {
                url: format!("sqlite://{}", dir.join("test.db").display()),
                pg_admin: None,
                dir,
            },
        }
    }
    pub fn is_postgres(&self) -> bool {
        self.pg_admin.is_some()
    }
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = &self.pg_admin {
            if let Ok(mut c) = diesel::PgConnection::establish(admin) {
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut c);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Settings for a test app on `db`, with mail written to files in the test's directory.
pub fn test_settings(db: &TestDb) -> Settings {
    let mut s = Settings::from_env().expect("settings");
    s.database_url = db.url.clone();
    s.bind = "127.0.0.1:0".into();
    s.base_url = BASE_URL.into();
    s.secret = None;
    s.mail_url = format!("file://{}", db.dir().join("mail").display());
    s.pool_size = 8;
    s.workers = 2;
    s.cookie_secure = false;
    s.trust_proxy = false;
    s.login_max_failures_account = 5;
    s.login_max_failures_ip = 1000;
    s.login_base_delay_secs = 30;
    s.max_avatar_bytes = 2 * 1024 * 1024;
    s
}

/// (id, email, handle, display name, password hash, bio, locale)
pub type UserRow = (i64, String, String, String, String, String, Option<String>);

pub struct TestApp {
    pub addr: String,
    pub pool: Pool,
    /// The app's clock: tests move time with `advance`.
    pub clock: haodian::clock::Clock,
    handle: Option<actix_web::dev::ServerHandle>,
    pub db: TestDb,
}

impl TestApp {
    pub fn conn(&self) -> r2d2::PooledConnection<haodian::db::Manager> {
        self.pool.get().expect("pool")
    }
    pub fn client(&self) -> Client {
        Client::new(&self.addr)
    }
    /// Creates a verified account with a role straight through the service.
    pub fn user(&self, handle: &str, role: Role) -> String {
        let email = format!("{handle}@example.com");
        service::create_user(
            &mut self.conn(),
            &email,
            handle,
            handle,
            PASSWORD,
            role,
            None,
        )
        .expect("create user");
        email
    }
    /// A client logged in as a new account with `role`.
    pub async fn logged_in(&self, handle: &str, role: Role) -> Client {
        let email = self.user(handle, role);
        let c = self.client();
        c.login(&email, PASSWORD).await.assert_status(303);
        c
    }
    /// A stand-in for the signed-in account `handle` with `roles`, for calling services directly.
    pub fn session_user(&self, handle: &str, roles: Vec<Role>) -> haodian::accounts::SessionUser {
        use haodian::db::schema::users as u;
        let (id, email): (i64, String) = u::table
            .filter(u::handle.eq(handle))
            .select((u::id, u::email))
            .first(&mut *self.conn())
            .expect("user");
        haodian::accounts::SessionUser {
            id,
            session_id: 0,
            email,
            handle: handle.into(),
            display_name: handle.into(),
            roles,
            locale: None,
            email_verified: true,
            avatar_media_id: None,
            mfa: Default::default(),
        }
    }
    /// The newest queued email to `to`: (subject, body).
    pub fn last_mail(&self, to: &str) -> Option<(String, String)> {
        use haodian::db::schema::mail_outbox as mo;
        mo::table
            .filter(mo::to_addr.eq(to))
            .order(mo::id.desc())
            .select((mo::subject, mo::body_text))
            .first(&mut *self.conn())
            .optional()
            .expect("outbox")
    }
    /// The path and query of the first link in the newest email to `to`.
    pub fn mail_link(&self, to: &str) -> String {
        let (_, body) = self.last_mail(to).expect("an email");
        let start = body.find(BASE_URL).expect("a link") + BASE_URL.len();
        body[start..]
            .split_whitespace()
            .next()
            .expect("link")
            .to_string()
    }
    /// Row counts of the tables a request could write (all but the throttle counters).
    pub fn counts(&self) -> Vec<(&'static str, i64)> {
        use haodian::db::schema::*;
        let c = &mut *self.conn();
        vec![
            ("users", users::table.count().get_result(c).unwrap()),
            (
                "user_roles",
                user_roles::table.count().get_result(c).unwrap(),
            ),
            ("sessions", sessions::table.count().get_result(c).unwrap()),
            (
                "email_tokens",
                email_tokens::table.count().get_result(c).unwrap(),
            ),
            (
                "mail_outbox",
                mail_outbox::table.count().get_result(c).unwrap(),
            ),
            ("media", media::table.count().get_result(c).unwrap()),
            ("audit_log", audit_log::table.count().get_result(c).unwrap()),
            (
                "violations",
                violations::table.count().get_result(c).unwrap(),
            ),
            ("penalties", penalties::table.count().get_result(c).unwrap()),
            ("appeals", appeals::table.count().get_result(c).unwrap()),
            ("rule_sets", rule_sets::table.count().get_result(c).unwrap()),
            (
                "prohibited_terms",
                prohibited_terms::table.count().get_result(c).unwrap(),
            ),
            (
                "violation_types",
                violation_types::table.count().get_result(c).unwrap(),
            ),
            (
                "penalty_nodes",
                penalty_nodes::table.count().get_result(c).unwrap(),
            ),
            (
                "score_rules",
                score_rules::table.count().get_result(c).unwrap(),
            ),
        ]
    }
    /// Everything users can change about accounts, to prove a request changed nothing.
    pub fn user_rows(&self) -> Vec<UserRow> {
        use haodian::db::schema::users as u;
        u::table
            .order(u::id)
            .select((
                u::id,
                u::email,
                u::handle,
                u::display_name,
                u::password_hash,
                u::bio,
                u::locale,
            ))
            .load(&mut *self.conn())
            .unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            let _ =
                std::thread::spawn(move || actix_web::rt::System::new().block_on(h.stop(false)))
                    .join();
        }
    }
}

pub fn spawn_app() -> TestApp {
    spawn_app_with(|_| {})
}

/// Starts the real app (scheduler off) with adjusted settings.
pub fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let db = TestDb::new();
    let mut settings = test_settings(&db);
    adjust(&mut settings);
    let (tx, rx) = std::sync::mpsc::channel();
    let s = settings;
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            match app::build(s, BuildOptions { scheduler: false }).await {
                Ok(r) => {
                    let _ = tx.send(Ok((
                        r.port,
                        r.state.pool.clone(),
                        r.state.clock.clone(),
                        r.server.handle(),
                    )));
                    let _ = r.server.await;
                }
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                }
            }
        })
    });
    let (port, pool, clock, handle) = rx.recv().expect("app thread").expect("app starts");
    TestApp {
        addr: format!("http://127.0.0.1:{port}"),
        pool,
        clock,
        handle: Some(handle),
        db,
    }
}

/// An HTTP response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Resp {
    #[track_caller]
    pub fn assert_status(&self, status: u16) -> &Self {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body:\n{}",
            self.body.chars().take(3000).collect::<String>()
        );
        self
    }
    pub fn location(&self) -> String {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

/// The value of the first `csrf_token` hidden field in a page.
pub fn csrf_in(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker).expect("page has a CSRF token") + marker.len();
    html[start..].split('"').next().unwrap_or("").to_string()
}

/// A browser-like client: cookies kept, redirects not followed (tests look at them).
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub jar: Arc<reqwest::cookie::Jar>,
}

impl Client {
    pub fn new(base: &str) -> Client {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let http = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            // Drop idle connections before the server's 5 s keep-alive closes them, so a
            // request never goes out on a connection the server is closing (IncompleteMessage).
            .pool_idle_timeout(std::time::Duration::from_secs(2))
            .build()
            .expect("client");
        Client {
            http,
            base: base.to_string(),
            jar,
        }
    }

    pub async fn read(r: reqwest::Response) -> Resp {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r.text().await.unwrap_or_default();
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        Self::read(
            self.http
                .get(format!("{}{path}", self.base))
                .send()
                .await
                .expect("GET"),
        )
        .await
    }

    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        let mut rb = self.http.get(format!("{}{path}", self.base));
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        Self::read(rb.send().await.expect("GET")).await
    }

    /// POSTs a urlencoded body as given (no token added).
    pub async fn post_raw(&self, path: &str, body: String) -> Resp {
        Self::read(
            self.http
                .post(format!("{}{path}", self.base))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .expect("POST"),
        )
        .await
    }

    /// POSTs fields as given (no token added).
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Resp {
        self.post_raw(path, serde_urlencoded::to_string(fields).unwrap())
            .await
    }

    /// The CSRF token of this client's session, read from a page's form.
    pub async fn csrf(&self) -> String {
        csrf_in(&self.get("/").await.body)
    }

    /// Submits a form like a browser: loads `page`, takes its token, posts `fields` to `action`.
    pub async fn submit(&self, page: &str, action: &str, fields: &[(&str, &str)]) -> Resp {
        let token = csrf_in(&self.get(page).await.body);
        let mut all: Vec<(&str, &str)> = vec![("csrf_token", &token)];
        all.extend_from_slice(fields);
        self.post(action, &all).await
    }

    pub async fn login(&self, email: &str, password: &str) -> Resp {
        self.submit(
            "/login",
            "/login",
            &[("email", email), ("password", password)],
        )
        .await
    }

    pub async fn logout(&self) -> Resp {
        let token = csrf_in(&self.get("/settings").await.body);
        self.post("/logout", &[("csrf_token", &token)]).await
    }

    /// The value of a cookie this client holds.
    pub fn cookie(&self, name: &str) -> Option<String> {
        use reqwest::cookie::CookieStore;
        let url = self.base.parse().ok()?;
        let header = self.jar.cookies(&url)?;
        header
            .to_str()
            .ok()?
            .split("; ")
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")).map(str::to_string))
    }
}

/// Signs up through the form; returns the email used.
pub async fn signup(c: &Client, handle: &str) -> (String, Resp) {
    let email = format!("{handle}@example.com");
    let r = c
        .submit(
            "/signup",
            "/signup",
            &[
                ("email", &email),
                ("handle", handle),
                ("display_name", &format!("Name {handle}")),
                ("password", PASSWORD),
                ("password_confirm", PASSWORD),
            ],
        )
        .await;
    (email, r)
}

/// Posts a multipart form like a browser: token from `page`, text fields and files.
pub async fn submit_multipart(
    c: &Client,
    page: &str,
    action: &str,
    fields: &[(&str, &str)],
    files: &[(&str, &[u8])],
) -> Resp {
    let token = csrf_in(&c.get(page).await.body);
    let mut form = reqwest::multipart::Form::new().text("csrf_token", token);
    for (k, v) in fields {
        form = form.text(k.to_string(), v.to_string());
    }
    for (k, bytes) in files {
        form = form.part(
            k.to_string(),
            reqwest::multipart::Part::bytes(bytes.to_vec()).file_name("upload.bin"),
        );
    }
    Client::read(
        c.http
            .post(format!("{}{action}", c.base))
            .multipart(form)
            .send()
            .await
            .expect("POST"),
    )
    .await
}
