//! Crash safety: the real `haodian` binary is killed with SIGKILL at random moments while
//! buyers place orders (20 cycles, loopback only), and afterwards every order acknowledged to
//! a buyer (a 303 to `/checkout/{id}`) exists with its lines, every checkout is whole, and per
//! SKU `stock + units in unrestocked order lines == initial stock`.
//!
//! SQLite (a file in a temp dir) by default; with TEST_DATABASE_URL=postgres://… a new
//! PostgreSQL database is created for the run and dropped after it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use haodian::db::schema::{categories, checkouts, order_lines, orders, skus, users};
use rand::Rng;

const BIN: &str = env!("CARGO_BIN_EXE_haodian");
const PASSWORD: &str = "violet-harbor-train-42";
/// Fixed, so sessions' CSRF tokens stay valid from one server process to the next.
const SECRET: &str = "crash-harness-secret-0123456789abcdefghij";
const CYCLES: usize = 20;
const BUYERS: usize = 6;
/// Killed after this many milliseconds of load.
const KILL_AFTER_MS: std::ops::Range<u64> = 50..400;

// ---------- database ----------

/// A fresh database for the run: a SQLite file, or a new PostgreSQL database.
struct Db {
    url: String,
    pg_admin: Option<(String, String)>,
    dir: std::path::PathBuf,
}

impl Db {
    fn new() -> Db {
        let tag = format!(
            "{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
        );
        let dir = std::env::temp_dir().join(format!("haodian_crash_{tag}"));
        std::fs::create_dir_all(&dir).unwrap();
        let pg = std::env::var("TEST_DATABASE_URL")
            .ok()
            .filter(|u| u.starts_with("postgres"));
        match pg {
            Some(admin) => {
                let name = format!("hd_crash_{tag}");
                let mut c = diesel::PgConnection::establish(&admin).unwrap_or_else(|e| {
                    panic!("TEST_DATABASE_URL is set but PostgreSQL is unreachable: {e}")
                });
                diesel::sql_query(format!("CREATE DATABASE {name}"))
                    .execute(&mut c)
                    .unwrap();
                let mut u = url::Url::parse(&admin).unwrap();
                u.set_path(&name);
                Db {
                    url: u.to_string(),
                    pg_admin: Some((admin, name)),
                    dir,
                }
            }
            None => Db {
                url: format!("sqlite://{}", dir.join("crash.db").display()),
                pg_admin: None,
                dir,
            },
        }
    }
    fn pool(&self) -> haodian::db::Pool {
        haodian::db::build_pool(&self.url, 2, "FULL").unwrap()
    }
    fn log(&self) -> std::path::PathBuf {
        self.dir.join("server.log")
    }
    /// `haodian <args>` against this database, with `stdin` piped in; panics on failure.
    fn run(&self, args: &[&str], stdin: &str) {
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "haodian {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    fn command(&self) -> Command {
        let mut c = Command::new(BIN);
        for (k, _) in std::env::vars() {
            if k.starts_with("HAODIAN_") {
                c.env_remove(k);
            }
        }
        c.env("DATABASE_URL", &self.url)
            .env("MAIL_URL", "log")
            .env("HAODIAN_SECRET", SECRET)
            .env("HAODIAN_WORKERS", "2")
            .env("HAODIAN_POOL_SIZE", "6")
            .env("RUST_LOG", "warn");
        c
    }
}

impl Drop for Db {
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

// ---------- the server process ----------

struct Server {
    child: Child,
    base: String,
}

impl Server {
    /// `haodian serve` on a free loopback port, once /healthz answers.
    async fn start(db: &Db) -> Server {
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(db.log())
                .unwrap();
            let mut child = db
                .command()
                .args(["serve", "--no-scheduler", "--bind"])
                .arg(format!("127.0.0.1:{port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap();
            let base = format!("http://127.0.0.1:{port}");
            let probe = reqwest::Client::new();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if child.try_wait().unwrap().is_some() {
                    break; // exited (the port was taken between probe and bind?): try another
                }
                if let Ok(r) = probe.get(format!("{base}/healthz")).send().await {
                    if r.status() == 200 {
                        return Server { child, base };
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "the server does not start; its log:\n{}",
            std::fs::read_to_string(db.log()).unwrap_or_default()
        );
    }

    /// SIGKILL: no shutdown hooks, no flushing, requests cut off mid-way.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------- an HTTP client like a browser ----------

/// Cookies are kept (sessions live in the database, so they outlive a server process; cookies
/// ignore the port), redirects are not followed.
#[derive(Clone)]
struct Client {
    http: reqwest::Client,
}

struct Resp {
    status: u16,
    location: String,
    body: String,
}

impl Client {
    fn new() -> Client {
        Client {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
        }
    }
    async fn read(r: reqwest::Result<reqwest::Response>) -> reqwest::Result<Resp> {
        let r = r?;
        let status = r.status().as_u16();
        let location = r
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = r.text().await?;
        Ok(Resp {
            status,
            location,
            body,
        })
    }
    async fn get(&self, url: &str) -> reqwest::Result<Resp> {
        Self::read(self.http.get(url).send().await).await
    }
    async fn post(&self, url: &str, fields: &[(String, String)]) -> reqwest::Result<Resp> {
        Self::read(self.http.post(url).form(fields).send().await).await
    }
    /// Loads `page`, posts its CSRF token and `fields` to `action`; expects a 303.
    async fn submit(&self, base: &str, page: &str, action: &str, fields: &[(&str, &str)]) -> Resp {
        let token = field(
            &self.get(&format!("{base}{page}")).await.unwrap().body,
            "csrf_token",
        )
        .expect("a CSRF token");
        let mut all = vec![("csrf_token".to_string(), token)];
        all.extend(fields.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let r = self.post(&format!("{base}{action}"), &all).await.unwrap();
        assert_eq!(r.status, 303, "POST {action}: {}", r.body);
        r
    }
}

/// The value of the first `<input name="{name}" value="…">` of a page.
fn field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    html[start..].split('"').next().map(str::to_string)
}

// ---------- set-up ----------

fn create_user(db: &Db, handle: &str, role: &str) -> String {
    let email = format!("{handle}@example.com");
    db.run(
        &[
            "user",
            "create",
            "--email",
            &email,
            "--handle",
            handle,
            "--role",
            role,
            "--password-stdin",
        ],
        PASSWORD,
    );
    email
}

async fn login(base: &str, email: &str) -> Client {
    let c = Client::new();
    c.submit(
        base,
        "/login",
        "/login",
        &[("email", email), ("password", PASSWORD)],
    )
    .await;
    c
}

/// A merchant's shop with one listed product: `stocks` gives the SKUs (one per variant of
/// `variants`, or one SKU when it is empty). Returns the SKU ids.
async fn shop_with_product(
    db: &Db,
    pool: &haodian::db::Pool,
    base: &str,
    handle: &str,
    variants: &str,
    stocks: &[i64],
) -> Vec<i64> {
    let email = create_user(db, handle, "merchant");
    let m = login(base, &email).await;
    let cat: i64 = categories::table
        .filter(categories::slug.eq("apparel"))
        .select(categories::id)
        .first(&mut *pool.get().unwrap())
        .unwrap();
    let cat = cat.to_string();
    let token = field(
        &m.get(&format!("{base}/")).await.unwrap().body,
        "csrf_token",
    )
    .unwrap();
    let form = reqwest::multipart::Form::new()
        .text("csrf_token", token)
        .text("name", format!("{handle} 的店"))
        .text("slug", handle.replace('_', "-"))
        .text("main_category_id", cat.clone())
        .text("entity_type", "individual");
    let r = m
        .http
        .post(format!("{base}/merchant/shop/open"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "open shop: {}", r.text().await.unwrap());
    let r = m
        .submit(
            base,
            "/merchant/products/new",
            "/merchant/products/new",
            &[
                ("title", &format!("{handle} 的商品")),
                ("category_id", &cat),
            ],
        )
        .await;
    let id: i64 = r
        .location
        .trim_start_matches("/merchant/products/")
        .parse()
        .unwrap();
    let page = format!("/merchant/products/{id}");
    if !variants.is_empty() {
        m.submit(
            base,
            &page,
            &format!("{page}/variants"),
            &[("variants", variants)],
        )
        .await;
    }
    let ids: Vec<i64> = skus::table
        .filter(skus::product_id.eq(id))
        .order(skus::position)
        .select(skus::id)
        .load(&mut *pool.get().unwrap())
        .unwrap();
    assert_eq!(ids.len(), stocks.len(), "one stock per SKU");
    let mut fields: Vec<(String, String)> = Vec::new();
    for (i, (s, stock)) in ids.iter().zip(stocks).enumerate() {
        fields.push((format!("sku_{s}_code"), format!("C{id}-{i}")));
        fields.push((format!("sku_{s}_price"), format!("{}.50", 10 + i)));
        fields.push((format!("sku_{s}_list_price"), String::new()));
        fields.push((format!("sku_{s}_stock"), stock.to_string()));
    }
    let refs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    m.submit(base, &page, &format!("{page}/skus"), &refs).await;
    m.submit(base, &page, &format!("{page}/submit"), &[]).await;
    ids
}

// ---------- the load ----------

/// One buyer's state, kept across server processes.
struct Buyer {
    handle: String,
    client: Client,
    /// The session's CSRF token (stable for the session and the fixed secret).
    csrf: String,
    /// A checkout posted whose answer was lost to a kill: posted again (same key) after the
    /// restart, which must answer with the checkout it made, or make it now.
    pending: Option<Vec<(String, String)>>,
    /// The checkout the pending key made before the kill, as found in the database while no
    /// server ran: the retry must answer with exactly this one.
    committed: Option<i64>,
    acked: Vec<i64>,
    /// Checkouts committed whose answer the kill swallowed.
    unanswered: usize,
    lost: usize,
    recovered: usize,
    conflicts: usize,
    odd: Vec<String>,
}

impl Buyer {
    fn form(&self, fields: &[(&str, String)]) -> Vec<(String, String)> {
        let mut all = vec![("csrf_token".to_string(), self.csrf.clone())];
        all.extend(fields.iter().map(|(k, v)| (k.to_string(), v.clone())));
        all
    }

    /// Posts a checkout; Err when the server went away before answering.
    async fn checkout(
        &mut self,
        base: &str,
        form: Vec<(String, String)>,
        skus: &[i64],
    ) -> Result<(), ()> {
        self.pending = Some(form.clone());
        let r = self
            .client
            .post(&format!("{base}/checkout"), &form)
            .await
            .map_err(|_| self.lost += 1)?;
        self.pending = None;
        if r.status != 303 {
            if let Some(before) = self.committed.take() {
                self.odd.push(format!(
                    "the retried key made checkout {before}, the answer is {}",
                    r.status
                ));
            }
        }
        match r.status {
            303 => {
                let id: i64 = r
                    .location
                    .strip_prefix("/checkout/")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| panic!("checkout redirect {:?}", r.location));
                if let Some(before) = self.committed.take() {
                    if before != id {
                        self.odd.push(format!(
                            "the retried key made checkout {before}, the answer names {id}"
                        ));
                    }
                }
                self.acked.push(id);
                Ok(())
            }
            409 => {
                // Sold out (or prices changed): empty the cart and go on.
                self.conflicts += 1;
                for s in skus {
                    let f = self.form(&[("sku", s.to_string()), ("quantity", "0".into())]);
                    self.client
                        .post(&format!("{base}/cart/update"), &f)
                        .await
                        .map_err(|_| ())?;
                }
                Ok(())
            }
            s => {
                self.odd.push(format!(
                    "POST /checkout {s}: {}",
                    r.body.chars().take(300).collect::<String>()
                ));
                Ok(())
            }
        }
    }

    /// Adds to the cart and checks out, over and over, until the server is gone.
    async fn shop_until_gone(&mut self, base: &str, skus: &[i64]) {
        if let Some(form) = self.pending.clone() {
            let before = self.acked.len();
            if self.checkout(base, form, skus).await.is_err() {
                return;
            }
            if self.acked.len() > before {
                self.recovered += 1;
            }
        }
        loop {
            let (sku, qty) = {
                let mut rng = rand::thread_rng();
                (skus[rng.gen_range(0..skus.len())], rng.gen_range(1..=2))
            };
            let f = self.form(&[("sku", sku.to_string()), ("quantity", qty.to_string())]);
            match self.client.post(&format!("{base}/cart/add"), &f).await {
                Err(_) => return,
                Ok(r) if r.status == 303 || r.status == 409 => {}
                Ok(r) => self.odd.push(format!("POST /cart/add {}", r.status)),
            }
            let Ok(page) = self.client.get(&format!("{base}/checkout")).await else {
                return;
            };
            if page.status != 200 {
                self.odd.push(format!("GET /checkout {}", page.status));
                continue;
            }
            let (Some(key), Some(total), Some(address)) = (
                field(&page.body, "key"),
                field(&page.body, "expected_total"),
                field(&page.body, "address_id"),
            ) else {
                continue; // nothing buyable in the cart (the SKU sold out)
            };
            let form = self.form(&[
                ("key", key),
                ("expected_total", total),
                ("address_id", address),
            ]);
            if self.checkout(base, form, skus).await.is_err() {
                return;
            }
        }
    }
}

/// For each buyer whose last checkout went unanswered: did it commit? Read straight from the
/// database while no server runs.
fn find_committed(db: &Db, buyers: &mut [Buyer]) {
    if buyers.iter().all(|b| b.pending.is_none()) {
        return;
    }
    let pool = db.pool();
    let c = &mut *pool.get().unwrap();
    for b in buyers {
        let Some(form) = &b.pending else { continue };
        let key = &form.iter().find(|(k, _)| k == "key").unwrap().1;
        b.committed = checkouts::table
            .inner_join(users::table.on(users::id.eq(checkouts::buyer_id)))
            .filter(users::handle.eq(&b.handle))
            .filter(checkouts::idem_key.eq(key))
            .select(checkouts::id)
            .first(c)
            .optional()
            .unwrap();
        b.unanswered += usize::from(b.committed.is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_acknowledged_before_a_sigkill_survive_it() {
    let started = Instant::now();
    let db = Db::new();
    db.run(&["migrate"], "");

    // Two shops (so a checkout can make two orders), one SKU with little stock that sells out.
    let server = Server::start(&db).await;
    let base = server.base.clone();
    let pool = db.pool();
    let mut all_skus = shop_with_product(
        &db,
        &pool,
        &base,
        "crash_shop_a",
        "颜色: 白, 黑",
        &[100_000, 30],
    )
    .await;
    all_skus.extend(shop_with_product(&db, &pool, &base, "crash_shop_b", "", &[100_000]).await);
    let initial: BTreeMap<i64, i64> = skus::table
        .filter(skus::id.eq_any(&all_skus))
        .select((skus::id, skus::stock))
        .load(&mut *pool.get().unwrap())
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(initial.len(), 3);
    drop(pool);
    let mut buyers = Vec::new();
    for i in 0..BUYERS {
        let handle = format!("crash_buyer{i}");
        let email = create_user(&db, &handle, "buyer");
        let client = login(&base, &email).await;
        client
            .submit(
                &base,
                "/addresses",
                "/addresses",
                &[
                    ("recipient", "张三"),
                    ("phone", "13812345678"),
                    ("province", "浙江省"),
                    ("city", "杭州市"),
                    ("district", "西湖区"),
                    ("detail", "文三路 100 号 2 单元 301"),
                ],
            )
            .await;
        let csrf = field(
            &client.get(&format!("{base}/")).await.unwrap().body,
            "csrf_token",
        )
        .unwrap();
        buyers.push(Buyer {
            handle,
            client,
            csrf,
            pending: None,
            committed: None,
            acked: Vec::new(),
            unanswered: 0,
            lost: 0,
            recovered: 0,
            conflicts: 0,
            odd: Vec::new(),
        });
    }
    server.kill();
    let setup = started.elapsed();

    // The cycles: start, load, SIGKILL at a random moment.
    for _ in 0..CYCLES {
        let server = Server::start(&db).await;
        let base = server.base.clone();
        let tasks: Vec<_> = buyers
            .into_iter()
            .map(|mut b| {
                let (base, skus) = (base.clone(), all_skus.clone());
                tokio::spawn(async move {
                    b.shop_until_gone(&base, &skus).await;
                    b
                })
            })
            .collect();
        let delay = rand::thread_rng().gen_range(KILL_AFTER_MS);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        server.kill();
        buyers = Vec::new();
        for t in tasks {
            buyers.push(t.await.unwrap());
        }
        find_committed(&db, &mut buyers);
    }

    // Once more: checkouts whose answer was lost are posted again with their key.
    let server = Server::start(&db).await;
    let mut retried = 0;
    for b in &mut buyers {
        if let Some(form) = b.pending.clone() {
            retried += 1;
            b.checkout(&server.base, form, &all_skus)
                .await
                .expect("the final server stays up");
        }
    }
    let health = reqwest::get(format!("{}/healthz", server.base))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    server.kill();

    // Every acknowledged checkout is there, whole, and the stock adds up.
    let pool = db.pool();
    let c = &mut *pool.get().unwrap();
    let odd: Vec<&String> = buyers.iter().flat_map(|b| &b.odd).collect();
    assert!(odd.is_empty(), "unexpected answers: {odd:#?}");
    let mut seen = HashSet::new();
    for b in &buyers {
        let buyer_id: i64 = users::table
            .filter(users::handle.eq(&b.handle))
            .select(users::id)
            .first(c)
            .unwrap();
        for id in &b.acked {
            assert!(seen.insert(*id), "checkout {id} acknowledged twice");
            let owner: Option<i64> = checkouts::table
                .find(id)
                .select(checkouts::buyer_id)
                .first(c)
                .optional()
                .unwrap();
            assert_eq!(
                owner,
                Some(buyer_id),
                "acknowledged checkout {id} of {}",
                b.handle
            );
        }
    }
    // Every checkout in the database (acknowledged or not) is whole: orders, lines, totals.
    let all_checkouts: Vec<(i64, i64)> = checkouts::table
        .select((checkouts::id, checkouts::total_fen))
        .load(c)
        .unwrap();
    let order_rows: Vec<(i64, i64, i64, i64)> = orders::table
        .select((
            orders::id,
            orders::checkout_id,
            orders::items_fen,
            orders::total_fen,
        ))
        .load(c)
        .unwrap();
    let line_rows: Vec<(i64, i64, i64, i64, bool)> = order_lines::table
        .select((
            order_lines::order_id,
            order_lines::sku_id,
            order_lines::price_fen,
            order_lines::quantity,
            order_lines::restocked,
        ))
        .load(c)
        .unwrap();
    for (id, total) in &all_checkouts {
        let os: Vec<_> = order_rows.iter().filter(|o| o.1 == *id).collect();
        assert!(!os.is_empty(), "checkout {id} has no orders");
        assert_eq!(
            os.iter().map(|o| o.3).sum::<i64>(),
            *total,
            "checkout {id}: total = its orders' totals"
        );
        for (oid, _, items, _) in os {
            let amount: i64 = line_rows
                .iter()
                .filter(|l| l.0 == *oid)
                .map(|l| l.2 * l.3)
                .sum();
            assert!(
                line_rows.iter().any(|l| l.0 == *oid),
                "order {oid} has no lines"
            );
            assert_eq!(amount, *items, "order {oid}: items = its lines");
        }
    }
    for (sku, start) in &initial {
        let now: i64 = skus::table.find(sku).select(skus::stock).first(c).unwrap();
        let sold: i64 = line_rows
            .iter()
            .filter(|l| l.1 == *sku && !l.4)
            .map(|l| l.3)
            .sum();
        assert!(now >= 0, "SKU {sku}: stock {now}");
        assert_eq!(now + sold, *start, "SKU {sku}: stock {now} + sold {sold}");
    }

    let acked: usize = buyers.iter().map(|b| b.acked.len()).sum();
    let lost: usize = buyers.iter().map(|b| b.lost).sum();
    let recovered: usize = buyers.iter().map(|b| b.recovered).sum();
    let unanswered: usize = buyers.iter().map(|b| b.unanswered).sum();
    let conflicts: usize = buyers.iter().map(|b| b.conflicts).sum();
    eprintln!(
        "crash harness ({}): {CYCLES} SIGKILLs, {acked} checkouts acknowledged, {} in the \
         database, {lost} answers lost to a kill (of them {unanswered} \
         committed; {recovered} answered on retry after a restart, {retried} at the end), {conflicts} sold-out refusals; setup {:.1} s, total {:.1} s",
        if db.pg_admin.is_some() { "postgres" } else { "sqlite" },
        all_checkouts.len(),
        setup.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    // With every unanswered checkout posted again, nothing was made behind a buyer's back.
    assert_eq!(
        acked,
        all_checkouts.len(),
        "every checkout in the database was acknowledged to its buyer"
    );
    assert!(
        acked >= CYCLES,
        "the load was too light to mean anything: {acked} checkouts"
    );
}
