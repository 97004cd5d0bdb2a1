//! Checkout load generator for `bench/checkout`: N concurrent buyers, each with its own cookie
//! session, walk the path a browser takes to place an order, over and over, for a bounded time:
//!
//!   POST /cart/add (csrf_token, sku, quantity=1)           → 303
//!   GET  /checkout (read key, expected_total, address_id)  → 200
//!   POST /checkout (csrf_token, key, expected_total, address_id) → 303 /checkout/{id}
//!
//! Scenarios: `spread` (each cycle picks a random SKU of `--skus-file`), `hot` (every cycle
//! buys `--hot-sku`), `sellout` (every cycle buys `--hot-sku` until it is sold out: each buyer
//! stops at its first "sold out" answer). Before the clock starts each buyer logs in (accounts
//! made by `haodian user create`) and gets an address if it has none; the CSRF token is read
//! once per session. Prints a human-readable summary and one `RESULT key=value …` line.
//!
//!   cargo run --release --example checkout_load -- --base http://127.0.0.1:18080 \
//!     --buyers-file buyers.txt --password PW --scenario hot --hot-sku 1 --duration 10
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;

#[derive(Parser, Debug, Clone)]
#[command(about = "haodian checkout load generator")]
struct Args {
    /// Base URL of a running haodian.
    #[arg(long, default_value = "http://127.0.0.1:18080")]
    base: String,
    /// Buyer emails, one a line (the first `--buyers` are used).
    #[arg(long)]
    buyers_file: String,
    /// The buyers' password.
    #[arg(long)]
    password: String,
    /// How many concurrent buyers.
    #[arg(long, default_value_t = 16)]
    buyers: usize,
    /// spread, hot or sellout.
    #[arg(long)]
    scenario: String,
    /// SKU ids for `spread`, one a line.
    #[arg(long)]
    skus_file: Option<String>,
    /// The SKU of `hot` and `sellout`.
    #[arg(long)]
    hot_sku: Option<i64>,
    /// Measured seconds (`sellout` stops earlier once every buyer saw "sold out").
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Unmeasured seconds before the measured ones (not for `sellout`).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Also GET the redirect targets, as a browser does (/cart after adding, /checkout/{id}
    /// after placing); they count into the cycle.
    #[arg(long)]
    follow: bool,
    /// Load-generator threads (it shares the machine with the server).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// The server's process id: its CPU time over the measured window is reported per order
    /// (Linux /proc), next to the load generator's own.
    #[arg(long)]
    server_pid: Option<u32>,
}

/// CPU seconds (user + system) a process has used so far, from /proc (Linux).
fn cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start at ") ".
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// The machine's stolen CPU ticks so far (a virtual machine's time taken by its host), from the
/// `cpu` line of /proc/stat (Linux; USER_HZ = 100 per core).
fn steal_ticks() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find(|l| l.starts_with("cpu "))?
        .split_whitespace()
        .nth(8)?
        .parse()
        .ok()
}

/// What one buyer saw.
#[derive(Default)]
struct Stats {
    /// Orders placed (303 to /checkout/{id}) in the measured window.
    orders: u64,
    /// Orders placed at all (warm-up included): what the database must show.
    placed_total: u64,
    /// Microseconds of each successful checkout POST / whole cycle / step, measured window.
    checkout_us: Vec<u32>,
    cycle_us: Vec<u32>,
    add_us: Vec<u32>,
    page_us: Vec<u32>,
    /// Answers that are not the expected ones, by kind.
    err_5xx: u64,
    err_4xx: u64,
    err_other: u64,
    /// "Sold out" answers (409 on add, an empty checkout page, 409 on checkout).
    sold_out: u64,
    first_error: Option<String>,
}

impl Stats {
    fn merge(&mut self, o: Stats) {
        self.orders += o.orders;
        self.placed_total += o.placed_total;
        self.checkout_us.extend(o.checkout_us);
        self.cycle_us.extend(o.cycle_us);
        self.add_us.extend(o.add_us);
        self.page_us.extend(o.page_us);
        self.err_5xx += o.err_5xx;
        self.err_4xx += o.err_4xx;
        self.err_other += o.err_other;
        self.sold_out += o.sold_out;
        if self.first_error.is_none() {
            self.first_error = o.first_error;
        }
    }
    fn error(&mut self, status: Option<StatusCode>, what: String) {
        match status {
            Some(s) if s.is_server_error() => self.err_5xx += 1,
            Some(s) if s.is_client_error() => self.err_4xx += 1,
            _ => self.err_other += 1,
        }
        if self.first_error.is_none() {
            self.first_error = Some(what);
        }
    }
}

/// A hidden or radio input's value: `name="NAME" value="…"`.
fn input_value<'a>(html: &'a str, name: &str) -> Option<&'a str> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    html[start..].split('"').next()
}

/// The checked `address_id` radio, else the first.
fn checked_address(html: &str) -> Option<&str> {
    let mut rest = html;
    let mut first = None;
    while let Some(i) = rest.find("name=\"address_id\" value=\"") {
        rest = &rest[i + "name=\"address_id\" value=\"".len()..];
        let v = rest.split('"').next()?;
        first.get_or_insert(v);
        let tail = &rest[v.len() + 1..];
        if tail.starts_with(" checked") {
            return Some(v);
        }
    }
    first
}

/// A minimal HTTP/1.1 client over one keep-alive connection, with a cookie jar: the load
/// generator shares the machine with the server, and reqwest (hyper, its connection pool, its
/// cookie store) took ~600 µs of CPU per order of the 2 cores being measured; this takes a
/// fraction of that. It speaks only what haodian answers: Content-Length or chunked bodies,
/// Set-Cookie (a Max-Age=0 or empty value deletes), Connection: close.
struct Http {
    addr: String,
    host: String,
    conn: Option<tokio::io::BufReader<tokio::net::TcpStream>>,
    cookies: Vec<(String, String)>,
}

struct Reply {
    status: StatusCode,
    location: String,
    body: String,
}

impl Http {
    fn new(base: &str) -> Http {
        let host = base
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        Http {
            addr: host.clone(),
            host,
            conn: None,
            cookies: Vec::new(),
        }
    }

    async fn send(
        &mut self,
        method: &str,
        path: &str,
        form: Option<&str>,
    ) -> Result<Reply, String> {
        // A kept-alive connection the server closed meanwhile fails on first use: retry once on
        // a fresh one (only then; a fresh connection's failure is real).
        let reused = self.conn.is_some();
        let limit = Duration::from_secs(30);
        let timed_out = || std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer in 30 s");
        let first = tokio::time::timeout(limit, self.exchange(method, path, form))
            .await
            .unwrap_or_else(|_| Err(timed_out()));
        match first {
            Err(_) if reused => {
                self.conn = None;
                tokio::time::timeout(limit, self.exchange(method, path, form))
                    .await
                    .unwrap_or_else(|_| Err(timed_out()))
            }
            r => r,
        }
        .map_err(|e| {
            self.conn = None;
            format!("{method} {path}: {e}")
        })
    }

    async fn exchange(
        &mut self,
        method: &str,
        path: &str,
        form: Option<&str>,
    ) -> std::io::Result<Reply> {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.host);
        if !self.cookies.is_empty() {
            req.push_str("Cookie: ");
            for (i, (k, v)) in self.cookies.iter().enumerate() {
                if i > 0 {
                    req.push_str("; ");
                }
                req.push_str(k);
                req.push('=');
                req.push_str(v);
            }
            req.push_str("\r\n");
        }
        if let Some(body) = form {
            req.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
            req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
            req.push_str(body);
        } else {
            req.push_str("\r\n");
        }
        if self.conn.is_none() {
            let s = tokio::net::TcpStream::connect(&self.addr).await?;
            s.set_nodelay(true)?;
            self.conn = Some(tokio::io::BufReader::with_capacity(64 * 1024, s));
        }
        let conn = self.conn.as_mut().expect("connected");
        conn.get_mut().write_all(req.as_bytes()).await?;
        let bad =
            |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
        let mut line = String::new();
        if conn.read_line(&mut line).await? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        let code: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| bad("no status line"))?;
        let (mut length, mut chunked, mut close, mut location) =
            (0usize, false, false, String::new());
        loop {
            line.clear();
            conn.read_line(&mut line).await?;
            let h = line.trim_end();
            if h.is_empty() {
                break;
            }
            let Some((name, value)) = h.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.parse().map_err(|_| bad("content-length"))?,
                "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
                "connection" => close = value.eq_ignore_ascii_case("close"),
                "location" => location = value.to_string(),
                "set-cookie" => {
                    let mut parts = value.split(';');
                    let Some((k, v)) = parts.next().and_then(|kv| kv.split_once('=')) else {
                        continue;
                    };
                    let gone =
                        v.is_empty() || parts.any(|a| a.trim().eq_ignore_ascii_case("max-age=0"));
                    self.cookies.retain(|(n, _)| n != k);
                    if !gone {
                        self.cookies.push((k.to_string(), v.to_string()));
                    }
                }
                _ => {}
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                line.clear();
                conn.read_line(&mut line).await?;
                let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                    .map_err(|_| bad("chunk size"))?;
                let at = body.len();
                body.resize(at + size + 2, 0);
                conn.read_exact(&mut body[at..]).await?;
                body.truncate(at + size);
                if size == 0 {
                    break;
                }
            }
        } else {
            body.resize(length, 0);
            conn.read_exact(&mut body).await?;
        }
        if close {
            self.conn = None;
        }
        Ok(Reply {
            status: StatusCode::from_u16(code).map_err(|_| bad("status"))?,
            location,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}

struct Buyer {
    http: Http,
    csrf: String,
}

fn us(d: Duration) -> u32 {
    d.as_micros().min(u32::MAX as u128) as u32
}

impl Buyer {
    async fn get(&mut self, path: &str) -> Result<(StatusCode, String), String> {
        let r = self.http.send("GET", path, None).await?;
        Ok((r.status, r.body))
    }

    /// POSTs a form; returns the status, the Location header and the body.
    async fn post(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
    ) -> Result<(StatusCode, String, String), String> {
        let form = serde_urlencoded::to_string(fields).unwrap();
        let r = self.http.send("POST", path, Some(&form)).await?;
        Ok((r.status, r.location, r.body))
    }

    /// Logs in through the form and makes sure the account has an address.
    async fn login(base: &str, email: &str, password: &str) -> Result<Buyer, String> {
        let mut b = Buyer {
            http: Http::new(base),
            csrf: String::new(),
        };
        let (_, page) = b.get("/login").await?;
        b.csrf = input_value(&page, "csrf_token")
            .ok_or("no CSRF token on /login")?
            .to_string();
        let csrf = b.csrf.clone();
        let (s, _, _) = b
            .post(
                "/login",
                &[
                    ("csrf_token", &csrf),
                    ("email", email),
                    ("password", password),
                ],
            )
            .await?;
        if s != StatusCode::SEE_OTHER {
            return Err(format!("login {email}: {s}"));
        }
        // The token is per session: read the signed-in session's.
        let (s, page) = b.get("/addresses").await?;
        if s != StatusCode::OK {
            return Err(format!("GET /addresses as {email}: {s}"));
        }
        b.csrf = input_value(&page, "csrf_token")
            .ok_or("no CSRF token on /addresses")?
            .to_string();
        if !page.contains("action=\"/addresses/") {
            let csrf = b.csrf.clone();
            let (s, _, _) = b
                .post(
                    "/addresses",
                    &[
                        ("csrf_token", &csrf),
                        ("recipient", "压测买家"),
                        ("phone", "13812345678"),
                        ("province", "浙江省"),
                        ("city", "杭州市"),
                        ("district", "西湖区"),
                        ("detail", "文三路 100 号 2 单元 301"),
                        ("next", "/checkout"),
                    ],
                )
                .await?;
            if s != StatusCode::SEE_OTHER {
                return Err(format!("adding an address for {email}: {s}"));
            }
        }
        Ok(b)
    }

    /// Takes a SKU out of the cart again (after a checkout that could not buy it).
    async fn drop_line(&mut self, sku: &str) {
        let csrf = self.csrf.clone();
        let _ = self
            .post(
                "/cart/update",
                &[("csrf_token", &csrf), ("sku", sku), ("quantity", "0")],
            )
            .await;
    }
}

enum Cycle {
    Placed,
    SoldOut,
    Failed,
}

/// One buyer's cycle: add, checkout page, place. Records into `st` when `measured`.
async fn cycle(b: &mut Buyer, sku: i64, follow: bool, measured: bool, st: &mut Stats) -> Cycle {
    let sku_s = sku.to_string();
    let csrf = b.csrf.clone();
    let t0 = Instant::now();
    // 1. Add to cart.
    let r = b
        .post(
            "/cart/add",
            &[("csrf_token", &csrf), ("sku", &sku_s), ("quantity", "1")],
        )
        .await;
    match r {
        Ok((s, _, _)) if s == StatusCode::SEE_OTHER => {}
        Ok((s, _, _)) if s == StatusCode::CONFLICT => {
            st.sold_out += 1;
            return Cycle::SoldOut;
        }
        Ok((s, _, body)) => {
            st.error(Some(s), format!("POST /cart/add: {s} {}", snippet(&body)));
            return Cycle::Failed;
        }
        Err(e) => {
            st.error(None, e);
            return Cycle::Failed;
        }
    }
    if follow {
        let _ = b.get("/cart").await;
    }
    let t1 = Instant::now();
    // 2. The checkout page.
    let page = match b.get("/checkout").await {
        Ok((s, body)) if s == StatusCode::OK => body,
        Ok((s, body)) => {
            st.error(Some(s), format!("GET /checkout: {s} {}", snippet(&body)));
            return Cycle::Failed;
        }
        Err(e) => {
            st.error(None, e);
            return Cycle::Failed;
        }
    };
    let (Some(key), Some(total), Some(addr)) = (
        input_value(&page, "key"),
        input_value(&page, "expected_total"),
        checked_address(&page),
    ) else {
        // Nothing buyable any more: it sold out between adding and checking out.
        st.sold_out += 1;
        b.drop_line(&sku_s).await;
        return Cycle::SoldOut;
    };
    let t2 = Instant::now();
    // 3. Place the order.
    let r = b
        .post(
            "/checkout",
            &[
                ("csrf_token", &csrf),
                ("key", key),
                ("expected_total", total),
                ("address_id", addr),
            ],
        )
        .await;
    let t3 = Instant::now();
    match r {
        Ok((s, loc, _)) if s == StatusCode::SEE_OTHER && loc.starts_with("/checkout/") => {
            if follow {
                let _ = b.get(&loc).await;
            }
            st.placed_total += 1;
            if measured {
                let end = Instant::now();
                st.orders += 1;
                st.add_us.push(us(t1 - t0));
                st.page_us.push(us(t2 - t1));
                st.checkout_us.push(us(t3 - t2));
                st.cycle_us.push(us(end - t0));
            }
            Cycle::Placed
        }
        Ok((s, _, _)) if s == StatusCode::CONFLICT => {
            st.sold_out += 1;
            b.drop_line(&sku_s).await;
            Cycle::SoldOut
        }
        Ok((s, loc, body)) => {
            st.error(
                Some(s),
                format!("POST /checkout: {s} {loc} {}", snippet(&body)),
            );
            b.drop_line(&sku_s).await;
            Cycle::Failed
        }
        Err(e) => {
            st.error(None, e);
            Cycle::Failed
        }
    }
}

fn snippet(body: &str) -> String {
    body.chars()
        .take(160)
        .collect::<String>()
        .replace('\n', " ")
}

async fn run_buyer(
    mut b: Buyer,
    args: Arc<Args>,
    skus: Arc<Vec<i64>>,
    measure_from: Instant,
    end: Instant,
) -> Stats {
    let mut st = Stats::default();
    let mut rng = rand::rngs::StdRng::from_entropy();
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        let sku = skus[rng.gen_range(0..skus.len())];
        let measured = now >= measure_from;
        match cycle(&mut b, sku, args.follow, measured, &mut st).await {
            Cycle::SoldOut if args.scenario == "sellout" => break,
            // Don't spin on a broken server.
            Cycle::Failed if st.err_5xx + st.err_4xx + st.err_other > 1000 => break,
            _ => {}
        }
    }
    st
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

fn main() {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .expect("tokio runtime");
    std::process::exit(rt.block_on(run(args)));
}

async fn run(args: Args) -> i32 {
    let emails: Vec<String> = std::fs::read_to_string(&args.buyers_file)
        .expect("buyers file")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .take(args.buyers)
        .collect();
    if emails.len() < args.buyers {
        eprintln!(
            "checkout_load: {} buyers asked for, {} in {}",
            args.buyers,
            emails.len(),
            args.buyers_file
        );
        return 2;
    }
    let skus: Vec<i64> = match args.scenario.as_str() {
        "spread" => std::fs::read_to_string(args.skus_file.as_deref().expect("--skus-file"))
            .expect("skus file")
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect(),
        "hot" | "sellout" => vec![args.hot_sku.expect("--hot-sku")],
        other => {
            eprintln!("checkout_load: unknown scenario {other:?} (spread, hot, sellout)");
            return 2;
        }
    };
    if skus.is_empty() {
        eprintln!("checkout_load: no SKUs");
        return 2;
    }
    // Sessions first (argon2 on the server: ~50 ms each), concurrently.
    let logins = emails.iter().map(|e| {
        let (base, email, pw) = (args.base.clone(), e.clone(), args.password.clone());
        tokio::spawn(async move { Buyer::login(&base, &email, &pw).await })
    });
    let mut buyers = Vec::new();
    for h in logins {
        match h.await.expect("login task") {
            Ok(b) => buyers.push(b),
            Err(e) => {
                eprintln!("checkout_load: {e}");
                return 1;
            }
        }
    }
    let sellout = args.scenario == "sellout";
    let warmup = if sellout { 0.0 } else { args.warmup };
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(warmup);
    let end = measure_from + Duration::from_secs_f64(args.duration);
    let args = Arc::new(args);
    let skus = Arc::new(skus);
    let tasks: Vec<_> = buyers
        .into_iter()
        .map(|b| tokio::spawn(run_buyer(b, args.clone(), skus.clone(), measure_from, end)))
        .collect();
    // CPU from the start of the measured window (the warm-up and logins left out).
    let server_pid = args.server_pid.map(|p| p.to_string());
    tokio::time::sleep_until(measure_from.into()).await;
    let cpu0 = (server_pid.as_deref().and_then(cpu_secs), cpu_secs("self"));
    let steal0 = steal_ticks();
    let mut st = Stats::default();
    for t in tasks {
        st.merge(t.await.expect("buyer task"));
    }
    let cpu1 = (server_pid.as_deref().and_then(cpu_secs), cpu_secs("self"));
    let steal1 = steal_ticks();
    let finished = Instant::now().min(end);
    let secs = (finished - measure_from).as_secs_f64().max(1e-9);
    for v in [
        &mut st.checkout_us,
        &mut st.cycle_us,
        &mut st.add_us,
        &mut st.page_us,
    ] {
        v.sort_unstable();
    }
    let rate = st.orders as f64 / secs;
    let per_order = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if st.orders > 0 => (b - a) * 1e6 / st.orders as f64,
        _ => 0.0,
    };
    let server_cpu = per_order(cpu0.0, cpu1.0);
    let load_cpu = per_order(cpu0.1, cpu1.1);
    // Share of the machine's CPU time its host took away during the window.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let steal = match (steal0, steal1) {
        (Some(a), Some(b)) => (b - a) / (secs * 100.0 * cores) * 100.0,
        _ => 0.0,
    };
    let errors = st.err_5xx + st.err_4xx + st.err_other;
    println!(
        "{} buyers, scenario {}, {} SKU(s), {:.1} s measured{}",
        args.buyers,
        args.scenario,
        skus.len(),
        secs,
        if args.follow {
            " (redirects followed)"
        } else {
            ""
        }
    );
    println!(
        "  orders {} ({rate:.0}/s), placed in all {}, sold-out answers {}, errors {errors} (5xx {}, 4xx {}, other {})",
        st.orders, st.placed_total, st.sold_out, st.err_5xx, st.err_4xx, st.err_other
    );
    for (name, v) in [
        ("POST /cart/add", &st.add_us),
        ("GET /checkout", &st.page_us),
        ("POST /checkout", &st.checkout_us),
        ("whole cycle", &st.cycle_us),
    ] {
        println!(
            "  {name:<15} p50 {:7.2} ms  p90 {:7.2} ms  p99 {:7.2} ms  max {:7.2} ms",
            pct(v, 50.0),
            pct(v, 90.0),
            pct(v, 99.0),
            pct(v, 100.0)
        );
    }
    println!(
        "  CPU per order: server {server_cpu:.0} µs{}, load generator {load_cpu:.0} µs; CPU stolen by the host {steal:.0}%",
        if args.server_pid.is_none() {
            " (no --server-pid)"
        } else {
            ""
        }
    );
    if let Some(e) = &st.first_error {
        println!("  first error: {e}");
    }
    println!(
        "RESULT scenario={} orders={} placed_total={} secs={secs:.3} rate={rate:.1} \
         checkout_p50={:.2} checkout_p99={:.2} cycle_p50={:.2} cycle_p99={:.2} \
         add_p99={:.2} page_p99={:.2} sold_out={} errors={errors} err5xx={} \
         server_cpu_us={server_cpu:.0} load_cpu_us={load_cpu:.0} steal_pct={steal:.0}",
        args.scenario,
        st.orders,
        st.placed_total,
        pct(&st.checkout_us, 50.0),
        pct(&st.checkout_us, 99.0),
        pct(&st.cycle_us, 50.0),
        pct(&st.cycle_us, 99.0),
        pct(&st.add_us, 99.0),
        pct(&st.page_us, 99.0),
        st.sold_out,
        st.err_5xx
    );
    0
}
