//! Platform pieces: health, metrics, schema, mail outbox, job leases, audit log, CLI.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};

use crate::common::*;
use diesel::prelude::*;
use haodian::db::schema::{audit_log, job_runs, mail_outbox as mo};
use haodian::jobs::{self, Lease};
use haodian::mail::{self, Outgoing, Transport};

#[tokio::test]
async fn healthz_checks_the_database_and_metrics_count_requests() {
    let app = spawn_app();
    let c = app.client();
    let r = c.get("/healthz").await;
    r.assert_status(200);
    let backend = if app.db.is_postgres() {
        "postgres"
    } else {
        "sqlite"
    };
    assert!(
        r.body.contains("\"database\":\"ok\"") && r.body.contains(backend),
        "{}",
        r.body
    );
    c.get("/login").await;
    c.get("/login").await;
    c.get("/no-such").await;
    let m = c.get("/metrics").await;
    m.assert_status(200);
    assert!(m
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    assert!(
        m.body.contains(
            "haodian_http_requests_total{method=\"GET\",route=\"/login\",status=\"200\"} 2"
        ),
        "{}",
        m.body
    );
    assert!(m.body.contains("route=\"unmatched\",status=\"404\""));
    assert!(m.body.contains("haodian_http_request_duration_seconds_bucket{method=\"GET\",route=\"/login\",le=\"+Inf\"} 2"));
    assert!(m.body.contains("haodian_db_pool_connections "));
    assert!(m.body.contains("haodian_mail_outbox_depth 0"));
}

#[tokio::test]
async fn metrics_can_require_a_token() {
    let app = spawn_app_with(|s| s.metrics_token = Some("s3cret-token".into()));
    let c = app.client();
    c.get("/metrics").await.assert_status(403);
    c.get_with("/metrics", &[("authorization", "Bearer s3cret-token")])
        .await
        .assert_status(200);
}

/// PostgreSQL only: a SQLite file can not be taken away from open handles.
#[tokio::test]
async fn healthz_reports_a_dead_postgres_database() {
    let app = spawn_app();
    let c = app.client();
    c.get("/healthz").await.assert_status(200);
    if !app.db.is_postgres() {
        eprintln!("healthz_reports_a_dead_postgres_database: runs on PostgreSQL only");
        return;
    }
    let admin = pg_url().unwrap();
    let name = app.db.url.rsplit('/').next().unwrap().to_string();
    let mut a = diesel::PgConnection::establish(&admin).unwrap();
    diesel::sql_query(format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&mut a)
        .unwrap();
    let r = c.get("/healthz").await;
    r.assert_status(503);
    assert!(r.body.contains("\"database\":\"down\""));
    // Pages answer with the error page, not a crash.
    let r = c.get("/login").await;
    assert!(r.status == 200 || r.status == 500, "{}", r.status);
}

/// (column, portable type, nullable)
type Column = (String, String, bool);
/// (table, columns), sorted.
type Catalog = Vec<(String, Vec<Column>)>;

/// Parses `table! { name (pk) { col -> Type, … } }` blocks of schema.rs.
fn schema_rs() -> Catalog {
    let src =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/db/schema.rs")).unwrap();
    let mut tables = Vec::new();
    let mut current: Option<(String, Vec<Column>)> = None;
    for line in src.lines().map(str::trim) {
        if let Some((name, _)) = line
            .split_once(" (")
            .filter(|_| line.ends_with('{') && !line.starts_with("diesel"))
        {
            current = Some((name.to_string(), Vec::new()));
        } else if let (Some((_, cols)), Some((col, ty))) =
            (current.as_mut(), line.split_once(" -> "))
        {
            let ty = ty.trim_end_matches(',');
            let (nullable, ty) = match ty.strip_prefix("Nullable<") {
                Some(inner) => (true, inner.trim_end_matches('>')),
                None => (false, ty),
            };
            cols.push((col.to_string(), ty.to_string(), nullable));
        } else if line == "}" {
            if let Some(t) = current.take() {
                if !t.1.is_empty() {
                    tables.push(t);
                }
            }
        }
    }
    tables.sort();
    tables
}

#[derive(QueryableByName)]
struct PgCol {
    #[diesel(sql_type = diesel::sql_types::Text)]
    table_name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    column_name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    data_type: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    is_nullable: String,
}

#[derive(QueryableByName)]
struct SqliteTable {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

#[derive(QueryableByName)]
struct SqliteCol {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
    #[diesel(sql_type = diesel::sql_types::Text, column_name = "type")]
    ty: String,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    notnull: i32,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pk: i32,
}

/// The migrated catalog as (table, [(column, portable type, nullable)]).
fn migrated(conn: &mut haodian::db::DbConn) -> Catalog {
    let mut out: Catalog = Vec::new();
    match conn {
        haodian::db::DbConn::Postgres(c) => {
            let cols: Vec<PgCol> = diesel::sql_query(
                "SELECT table_name::text AS table_name, column_name::text AS column_name, data_type::text AS data_type, is_nullable::text AS is_nullable \
                 FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations' \
                 ORDER BY table_name, ordinal_position",
            )
            .load(c)
            .unwrap();
            for col in cols {
                let ty = match col.data_type.as_str() {
                    "bigint" => "BigInt",
                    "integer" => "Integer",
                    "text" => "Text",
                    "boolean" => "Bool",
                    "double precision" => "Double",
                    "timestamp without time zone" => "Timestamp",
                    "bytea" => "Binary",
                    other => panic!(
                        "unportable PostgreSQL type {other} in {}.{}",
                        col.table_name, col.column_name
                    ),
                };
                if out.last().map(|t| &t.0) != Some(&col.table_name) {
                    out.push((col.table_name.clone(), Vec::new()));
                }
                out.last_mut().unwrap().1.push((
                    col.column_name,
                    ty.to_string(),
                    col.is_nullable == "YES",
                ));
            }
        }
        haodian::db::DbConn::Sqlite(c) => {
            let tables: Vec<SqliteTable> = diesel::sql_query(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> '__diesel_schema_migrations' ORDER BY name",
            )
            .load(c)
            .unwrap();
            for t in tables {
                let cols: Vec<SqliteCol> =
                    diesel::sql_query(format!("PRAGMA table_info({})", t.name))
                        .load(c)
                        .unwrap();
                let cols = cols
                    .into_iter()
                    .map(|col| {
                        let ty = match col.ty.as_str() {
                            "BIGINT" => "BigInt",
                            "INTEGER" if col.pk == 1 => "BigInt",
                            "INTEGER" => "Integer",
                            "TEXT" => "Text",
                            "BOOLEAN" => "Bool",
                            "DOUBLE" => "Double",
                            "TIMESTAMP" => "Timestamp",
                            "BLOB" => "Binary",
                            other => {
                                panic!("unportable SQLite type {other} in {}.{}", t.name, col.name)
                            }
                        };
                        (col.name, ty.to_string(), col.notnull == 0 && col.pk == 0)
                    })
                    .collect();
                out.push((t.name, cols));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn migrated_schema_matches_schema_rs() {
    let db = TestDb::new();
    let pool = haodian::app::open_database(&test_settings(&db)).unwrap();
    let mut conn = pool.get().unwrap();
    let expected = schema_rs();
    assert!(expected.len() >= 10, "parsed schema.rs");
    assert_eq!(migrated(&mut conn), expected);
}

#[test]
fn migrations_run_down_and_up_again() {
    use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
    const PG: EmbeddedMigrations = embed_migrations!("migrations/postgres");
    const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
    let db = TestDb::new();
    let pool = haodian::app::open_database(&test_settings(&db)).unwrap();
    let mut conn = pool.get().unwrap();
    let before = migrated(&mut conn);
    match &mut *conn {
        haodian::db::DbConn::Postgres(c) => {
            c.revert_all_migrations(PG).unwrap();
        }
        haodian::db::DbConn::Sqlite(c) => {
            c.revert_all_migrations(SQLITE).unwrap();
        }
    }
    assert!(
        migrated(&mut conn).is_empty(),
        "down migrations drop everything"
    );
    assert!(haodian::db::migrate(&mut conn).unwrap() > 0);
    assert_eq!(migrated(&mut conn), before);
}

fn queue(conn: &mut haodian::db::DbConn, to: &str, n: usize) {
    for i in 0..n {
        mail::enqueue(
            conn,
            &Outgoing {
                to,
                kind: "test",
                subject: format!("测试 {i}"),
                body: format!("正文 {i}"),
            },
        )
        .unwrap();
    }
}

fn statuses(conn: &mut haodian::db::DbConn) -> Vec<(String, i64)> {
    mo::table
        .order(mo::id)
        .select((mo::status, mo::attempts))
        .load(conn)
        .unwrap()
}

/// A minimal SMTP server on loopback that answers RCPT with `rcpt_reply`; returns its port and
/// the messages it accepted.
fn fake_smtp(rcpt_reply: &'static str) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let store = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(20) {
            let Ok(stream) = stream else { break };
            let mut w = stream.try_clone().unwrap();
            let mut r = BufReader::new(stream);
            let _ = w.write_all(b"220 fake ESMTP\r\n");
            let mut line = String::new();
            let mut in_data = false;
            let mut data = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 {
                if in_data {
                    if line == ".\r\n" {
                        in_data = false;
                        store.lock().unwrap().push(std::mem::take(&mut data));
                        let _ = w.write_all(b"250 queued\r\n");
                    } else {
                        data.push_str(&line);
                    }
                } else {
                    let cmd = line.to_ascii_uppercase();
                    let reply: &str = if cmd.starts_with("EHLO") || cmd.starts_with("HELO") {
                        "250 fake\r\n"
                    } else if cmd.starts_with("RCPT") {
                        rcpt_reply
                    } else if cmd.starts_with("DATA") {
                        in_data = true;
                        "354 go on\r\n"
                    } else if cmd.starts_with("QUIT") {
                        let _ = w.write_all(b"221 bye\r\n");
                        break;
                    } else {
                        "250 ok\r\n"
                    };
                    let _ = w.write_all(reply.as_bytes());
                }
                line.clear();
            }
        }
    });
    (port, got)
}

#[test]
fn outbox_sends_over_smtp_retries_transient_failures_and_buries_permanent_ones() {
    let db = TestDb::new();
    let pool = haodian::app::open_database(&test_settings(&db)).unwrap();
    let conn = &mut *pool.get().unwrap();
    let from = "haodian <no-reply@haodian.local>";

    // SMTP down: nothing is lost, the row waits with a backoff.
    queue(conn, "a@example.com", 2);
    let down = Transport::from_url("smtp://127.0.0.1:1?tls=none").unwrap();
    let r = mail::drain(conn, &down, from, 10).unwrap();
    assert_eq!((r.sent, r.retried, r.dead), (0, 2, 0));
    assert_eq!(
        statuses(conn),
        vec![("pending".into(), 1), ("pending".into(), 1)]
    );
    let next: chrono::NaiveDateTime = mo::table.select(mo::next_attempt_at).first(conn).unwrap();
    assert!(
        next > chrono::Utc::now().naive_utc() + chrono::Duration::seconds(15),
        "backoff applied"
    );
    // Not due yet: a second pass sends nothing.
    let (port, got) = fake_smtp("250 ok\r\n");
    let up = Transport::from_url(&format!("smtp://127.0.0.1:{port}?tls=none")).unwrap();
    assert_eq!(mail::drain(conn, &up, from, 10).unwrap().sent, 0);
    // Once due, the server is back and both go out, once.
    diesel::update(mo::table)
        .set(mo::next_attempt_at.eq(chrono::Utc::now().naive_utc()))
        .execute(conn)
        .unwrap();
    assert_eq!(mail::drain(conn, &up, from, 10).unwrap().sent, 2);
    assert_eq!(mail::drain(conn, &up, from, 10).unwrap().sent, 0);
    assert_eq!(statuses(conn), vec![("sent".into(), 2), ("sent".into(), 2)]);
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(got.lock().unwrap().len(), 2);
    assert!(got.lock().unwrap()[0].contains("Subject:"));

    // A 5xx answer is permanent: dead at once.
    diesel::delete(mo::table).execute(conn).unwrap();
    queue(conn, "b@example.com", 1);
    let (port, _) = fake_smtp("550 no such user\r\n");
    let rejecting = Transport::from_url(&format!("smtp://127.0.0.1:{port}?tls=none")).unwrap();
    assert_eq!(mail::drain(conn, &rejecting, from, 10).unwrap().dead, 1);
    // A 4xx answer is transient, until the attempts run out.
    diesel::delete(mo::table).execute(conn).unwrap();
    queue(conn, "c@example.com", 1);
    let (port, _) = fake_smtp("451 try later\r\n");
    let busy = Transport::from_url(&format!("smtp://127.0.0.1:{port}?tls=none")).unwrap();
    for attempt in 1..=mail::MAX_ATTEMPTS {
        diesel::update(mo::table)
            .set(mo::next_attempt_at.eq(chrono::Utc::now().naive_utc()))
            .execute(conn)
            .unwrap();
        let r = mail::drain(conn, &busy, from, 10).unwrap();
        if attempt < mail::MAX_ATTEMPTS {
            assert_eq!(r.retried, 1, "attempt {attempt}");
        } else {
            assert_eq!(r.dead, 1);
        }
    }
    let last: Option<String> = mo::table.select(mo::last_error).first(conn).unwrap();
    assert!(last.unwrap().contains("451"));
    // An undeliverable address is dead at once.
    queue(conn, "not an address", 1);
    let file = Transport::from_url(&format!("file://{}", db.dir().join("mail").display())).unwrap();
    assert_eq!(mail::drain(conn, &file, from, 10).unwrap().dead, 1);
}

#[test]
fn file_transport_writes_eml_files_and_concurrent_drains_send_each_mail_once() {
    let db = TestDb::new();
    let pool = haodian::app::open_database(&test_settings(&db)).unwrap();
    queue(&mut pool.get().unwrap(), "many@example.com", 40);
    let dir = db.dir().join("mail");
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let pool = pool.clone();
            let dir = dir.clone();
            std::thread::spawn(move || {
                let t = Transport::File(dir);
                mail::drain(
                    &mut pool.get().unwrap(),
                    &t,
                    "haodian <no-reply@haodian.local>",
                    100,
                )
                .unwrap()
                .sent
            })
        })
        .collect();
    let sent: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(sent, 40);
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .collect();
    assert_eq!(files.len(), 40);
    let text = std::fs::read_to_string(files[0].path()).unwrap();
    assert!(text.contains("To: many@example.com"));
    assert!(
        text.contains("Content-Transfer-Encoding: 8bit") && text.contains("正文"),
        "readable body: {text}"
    );
    let conn = &mut *pool.get().unwrap();
    assert_eq!(mail::depth(conn).unwrap(), 0);
}

#[test]
fn job_lease_runs_once_across_nodes_and_can_be_resumed() {
    let db = TestDb::new();
    let pool = haodian::app::open_database(&test_settings(&db)).unwrap();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let pool = pool.clone();
            let b = barrier.clone();
            std::thread::spawn(move || {
                let mut c = pool.get().unwrap();
                b.wait();
                jobs::acquire(&mut c, "nightly", "2026-11-21", &format!("node{i}")).unwrap()
            })
        })
        .collect();
    let leases: Vec<Lease> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let won: Vec<i64> = leases
        .iter()
        .filter_map(|l| {
            if let Lease::Acquired(id) = l {
                Some(*id)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(won.len(), 1, "{leases:?}");
    assert_eq!(
        leases
            .iter()
            .filter(|l| matches!(l, Lease::Busy(_)))
            .count(),
        3
    );
    let conn = &mut *pool.get().unwrap();
    // A node that stops heart-beating loses the lease to the next caller (resume).
    let old =
        chrono::Utc::now().naive_utc() - chrono::Duration::seconds(jobs::STALE_AFTER_SECS + 5);
    diesel::update(job_runs::table)
        .set(job_runs::heartbeat_at.eq(old))
        .execute(conn)
        .unwrap();
    assert_eq!(
        jobs::acquire(conn, "nightly", "2026-11-21", "rescuer").unwrap(),
        Lease::Acquired(won[0])
    );
    assert!(
        matches!(jobs::acquire(conn, "nightly", "2026-11-21", "late").unwrap(), Lease::Busy(n) if n == "rescuer")
    );
    // A failed run is retried; a finished one is done.
    jobs::finish(conn, won[0], false, "boom").unwrap();
    assert_eq!(
        jobs::acquire(conn, "nightly", "2026-11-21", "retry").unwrap(),
        Lease::Acquired(won[0])
    );
    jobs::finish(conn, won[0], true, "ok").unwrap();
    assert_eq!(
        jobs::acquire(conn, "nightly", "2026-11-21", "again").unwrap(),
        Lease::Done
    );
    let attempts: i64 = job_runs::table
        .select(job_runs::attempts)
        .first(conn)
        .unwrap();
    assert_eq!(attempts, 3);
    // Another period is a new run.
    assert!(matches!(
        jobs::acquire(conn, "nightly", "2026-11-22", "n").unwrap(),
        Lease::Acquired(_)
    ));
}

#[test]
fn scheduled_jobs_run_once_per_period() {
    let db = TestDb::new();
    let settings = test_settings(&db);
    let pool = haodian::app::open_database(&settings).unwrap();
    queue(&mut pool.get().unwrap(), "sched@example.com", 3);
    let t = Transport::from_url("memory").unwrap();
    let first = jobs::run_due(&pool, &settings, &t, &haodian::app::jobs(), "n1");
    assert!(
        first
            .iter()
            .all(|o| o.skipped.is_none() && o.result.is_ok()),
        "{first:?}"
    );
    assert!(first
        .iter()
        .any(|o| o.job == "outbox.send" && o.result.as_deref() == Ok("sent=3 retried=0 dead=0")));
    if let Transport::Memory(v) = &t {
        assert_eq!(v.lock().unwrap().len(), 3);
    }
    let second = jobs::run_due(&pool, &settings, &t, &haodian::app::jobs(), "n2");
    let house = second.iter().find(|o| o.job == "housekeeping").unwrap();
    assert_eq!(
        house.skipped.as_deref(),
        Some("done"),
        "hourly job ran once this hour"
    );
}

#[test]
fn audit_log_is_append_only_in_the_database() {
    let db = TestDb::new();
    let pool = haodian::app::open_database(&test_settings(&db)).unwrap();
    let conn = &mut *pool.get().unwrap();
    haodian::accounts::service::create_user(
        conn,
        "aud@example.com",
        "auditee",
        "A",
        PASSWORD,
        haodian::accounts::Role::Moderator,
        None,
    )
    .unwrap();
    let n: i64 = audit_log::table.count().get_result(conn).unwrap();
    assert_eq!(n, 1);
    assert!(diesel::update(audit_log::table)
        .set(audit_log::detail.eq("forged"))
        .execute(conn)
        .is_err());
    assert!(diesel::delete(audit_log::table).execute(conn).is_err());
    let detail: String = audit_log::table
        .select(audit_log::detail)
        .first(conn)
        .unwrap();
    assert_eq!(detail, "role=moderator");
}

#[test]
fn the_source_never_updates_or_deletes_audit_rows() {
    let mut stack = vec![std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src"
    ))];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).unwrap().filter_map(Result::ok) {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&path)
                    .unwrap()
                    .replace(char::is_whitespace, "");
                for bad in [
                    "update(audit_log",
                    "delete(audit_log",
                    "update(crate::db::schema::audit_log",
                    "delete(crate::db::schema::audit_log",
                ] {
                    assert!(
                        !text.contains(bad),
                        "{} touches audit rows: {bad}",
                        path.display()
                    );
                }
            }
        }
    }
}

fn haodian_cmd(db: &TestDb) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_haodian"));
    c.env("DATABASE_URL", &db.url)
        .env("MAIL_URL", "log")
        .env("RUST_LOG", "error")
        .env_remove("HAODIAN_SECRET");
    c
}

fn run(mut c: Command, stdin: &str) -> (i32, String, String) {
    let mut child = c
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
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn cli_migrate_user_create_seed_and_jobs() {
    let db = TestDb::new();
    let mut c = haodian_cmd(&db);
    c.arg("migrate");
    let (code, out, _) = run(c, "");
    assert_eq!(code, 0);
    let applied: usize = out.trim().rsplit(' ').next().unwrap().parse().unwrap();
    assert!(applied >= 2, "{out}");
    let mut c = haodian_cmd(&db);
    c.arg("migrate");
    assert!(run(c, "").1.contains("migrations applied: 0"));

    let mut c = haodian_cmd(&db);
    c.args([
        "user",
        "create",
        "--email",
        "Mod@Example.com",
        "--handle",
        "mod_one",
        "--role",
        "moderator",
        "--password-stdin",
    ]);
    let (code, out, err) = run(c, &format!("{PASSWORD}\n"));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("mod@example.com") && out.contains("moderator"),
        "{out}"
    );
    let pool = haodian::db::build_pool(&db.url, 2, "FULL").unwrap();
    let u =
        haodian::accounts::service::find_by_handle(&mut pool.get().unwrap(), "mod_one").unwrap();
    assert!(
        haodian::accounts::password::verify(PASSWORD, &u.password_hash),
        "password from stdin, newline trimmed"
    );
    assert!(u.email_verified_at.is_some());
    assert_eq!(
        haodian::accounts::service::roles_of(&mut pool.get().unwrap(), u.id).unwrap(),
        vec![haodian::accounts::Role::Moderator]
    );

    // Bad input: one line, non-zero, nothing written.
    let mut c = haodian_cmd(&db);
    c.args([
        "user",
        "create",
        "--email",
        "x@example.com",
        "--handle",
        "x_user",
        "--role",
        "emperor",
        "--password-stdin",
    ]);
    let (code, _, err) = run(c, PASSWORD);
    assert_eq!(code, 2);
    assert!(err.contains("unknown role"), "{err}");
    let mut c = haodian_cmd(&db);
    c.args([
        "user",
        "create",
        "--email",
        "x@example.com",
        "--handle",
        "x_user",
        "--role",
        "admin",
        "--password-stdin",
    ]);
    let (code, _, err) = run(c, "password1234");
    assert_eq!(code, 1);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("password") && err.contains("common"), "{err}");
    let mut c = haodian_cmd(&db);
    c.args([
        "user",
        "create",
        "--email",
        "mod@example.com",
        "--handle",
        "other",
        "--role",
        "buyer",
        "--password-stdin",
    ]);
    let (code, _, err) = run(c, PASSWORD);
    assert_eq!(code, 1);
    assert!(err.contains("registered already"), "{err}");

    let mut c = haodian_cmd(&db);
    c.args(["seed", "--demo"]);
    let (code, out, _) = run(c, "");
    assert_eq!(code, 0);
    assert!(
        out.contains(haodian::seed::DEMO_PASSWORD) && out.contains("admin@demo.haodian.cn"),
        "{out}"
    );
    let mut c = haodian_cmd(&db);
    c.args(["seed", "--demo"]);
    let (code, _, err) = run(c, "");
    assert_eq!(code, 1, "seeding twice refuses");
    assert!(err.contains("exists already"), "{err}");

    let mut c = haodian_cmd(&db);
    c.args(["jobs", "run"]);
    let (code, out, err) = run(c, "");
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("outbox.send ") && l.contains(": ok")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("housekeeping ") && l.contains(": ok")),
        "{out}"
    );
}

#[test]
fn cli_reports_an_unreachable_database_in_one_line() {
    let (code, _, err) = run(
        {
            let mut c = Command::new(env!("CARGO_BIN_EXE_haodian"));
            c.env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/nowhere")
                .arg("migrate");
            c
        },
        "",
    );
    assert_eq!(code, 1);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: cannot connect to database"),
        "{err}"
    );
    let mut c = Command::new(env!("CARGO_BIN_EXE_haodian"));
    c.arg("frobnicate");
    let (code, _, err) = run(c, "");
    assert_eq!(code, 2);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("frobnicate"), "{err}");
    let mut c = Command::new(env!("CARGO_BIN_EXE_haodian"));
    c.args(["user", "create", "--email", "a@example.com"]);
    let (code, _, err) = run(c, "");
    assert_eq!(code, 2);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("--handle"), "{err}");
    let mut c = Command::new(env!("CARGO_BIN_EXE_haodian"));
    c.env("HAODIAN_TZ", "Mars/Olympus").arg("migrate");
    let (code, _, err) = run(c, "");
    assert_eq!(code, 2);
    assert!(err.contains("HAODIAN_TZ"), "{err}");
}

#[test]
fn serve_demo_starts_on_an_empty_database_and_answers() {
    let db = TestDb::new();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut c = haodian_cmd(&db);
    c.args([
        "serve",
        "--demo",
        "--no-scheduler",
        "--bind",
        &format!("127.0.0.1:{port}"),
    ]);
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut printed = String::new();
    while !printed.contains("listening") {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap() == 0 {
            break;
        }
        printed.push_str(&line);
    }
    let ok = std::net::TcpStream::connect(("127.0.0.1", port)).and_then(|mut s| {
        s.write_all(b"GET /healthz HTTP/1.0\r\n\r\n")?;
        let mut r = String::new();
        std::io::Read::read_to_string(&mut s, &mut r)?;
        Ok(r)
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        printed.contains("demo accounts") && printed.contains("listening"),
        "{printed}"
    );
    assert!(
        printed.contains("governance 2 violations recorded"),
        "{printed}"
    );
    assert!(ok.unwrap().contains("\"database\":\"ok\""));
}

/// The suite runs on the backend TEST_DATABASE_URL asks for (`.ci/run` checks this test ran).
#[test]
fn backend_is_the_one_asked_for() {
    let db = TestDb::new();
    let pool = haodian::app::open_database(&test_settings(&db)).unwrap();
    let backend = pool.get().unwrap().backend();
    let want = if pg_url().is_some() {
        haodian::db::Backend::Postgres
    } else {
        haodian::db::Backend::Sqlite
    };
    assert_eq!(backend, want);
    println!("backend under test: {}", backend.name());
}

#[tokio::test]
async fn bench_seed_builds_a_sixty_product_storefront() {
    let app = spawn_app();
    let settings = test_settings(&app.db);
    let lines = haodian::seed::bench(&mut app.conn(), &settings).unwrap();
    let product: String = lines[1]
        .rsplit("/products/")
        .next()
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    // Listing times out of step with the ids, with ties: the grid is newest listed first, ties
    // by the higher id, across its pages.
    use haodian::db::schema::products;
    let base = chrono::NaiveDate::from_ymd_opt(2026, 11, 1)
        .unwrap()
        .and_hms_opt(8, 0, 0)
        .unwrap();
    use haodian::db::schema::shops;
    let ids_in_db: Vec<i64> = products::table
        .inner_join(shops::table)
        .filter(shops::slug.eq("bench-shop"))
        .filter(products::status.eq("listed"))
        .select(products::id)
        .load(&mut app.conn())
        .unwrap();
    let mut expected: Vec<(chrono::NaiveDateTime, i64)> = Vec::new();
    for id in ids_in_db {
        let at = base + chrono::Duration::minutes((id * 7) % 13);
        diesel::update(products::table.find(id))
            .set(products::listed_at.eq(Some(at)))
            .execute(&mut app.conn())
            .unwrap();
        expected.push((at, id));
    }
    expected.sort_by(|a, b| b.cmp(a));
    let expected: Vec<String> = expected.iter().map(|(_, id)| id.to_string()).collect();
    let c = app.client();
    let store = c.get("/shops/bench-shop").await;
    store.assert_status(200);
    assert_eq!(
        store.body.matches("class=\"card product-card\"").count(),
        24,
        "24 a page"
    );
    assert!(store.body.contains("第 1 / 3 页"));
    // The three pages hold the 60 products, each once; the last page the remaining 12.
    let ids = |body: &str| -> Vec<String> {
        body.split("class=\"card product-card\" href=\"/products/")
            .skip(1)
            .map(|a| a[..a.find('"').unwrap()].to_string())
            .collect()
    };
    let mut all_ids = ids(&store.body);
    for n in [2, 3] {
        let p = c.get(&format!("/shops/bench-shop?page={n}")).await;
        p.assert_status(200);
        assert_eq!(ids(&p.body).len(), if n == 3 { 12 } else { 24 }, "page {n}");
        all_ids.extend(ids(&p.body));
    }
    let distinct: std::collections::BTreeSet<_> = all_ids.iter().collect();
    assert_eq!((all_ids.len(), distinct.len()), (60, 60));
    assert_eq!(all_ids, expected, "newest listed first, ties by id");
    let page = c.get(&format!("/products/{product}")).await;
    page.assert_status(200);
    assert_eq!(page.body.matches("class=\"sku-option").count(), 10);
    // 20 ratings, 10 a page, and yesterday's scores in the badge.
    assert!(page.body.contains("20 条评价"));
    assert_eq!(page.body.matches("<article class=\"rating\">").count(), 10);
    // Newest first, across both pages.
    let times = |body: &str| -> Vec<String> {
        body.split("<article class=\"rating\">")
            .skip(1)
            .map(|a| {
                let at = a.find(" · ").unwrap() + " · ".len();
                a[at..at + 16].to_string()
            })
            .collect()
    };
    let second = c.get(&format!("/products/{product}?rpage=2")).await;
    let mut all = times(&page.body);
    all.extend(times(&second.body));
    assert_eq!(all.len(), 20);
    let mut sorted = all.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(all, sorted, "newest first");
    assert!(all[0] > all[19]);
    let badge = &page.body[page.body.find("id=\"dsr-badge\"").unwrap()..];
    assert!(badge.contains("<dt>描述相符</dt>"), "{}", &badge[..600]);
    assert!(store.body.contains("<dt>描述相符</dt>"));
    assert!(
        haodian::seed::bench(&mut app.conn(), &settings).is_err(),
        "seeding twice refuses"
    );
}

#[tokio::test]
async fn scale_seed_writes_listed_indexed_products() {
    let app = spawn_app();
    let mut seen = Vec::new();
    let lines = haodian::seed::scale(&mut app.conn(), 3, &mut |n| seen.push(n)).unwrap();
    assert_eq!(
        lines[0],
        "scale data: 3 shops, 150 listed products, 1500 SKUs"
    );
    assert_eq!(seen, vec![3]);
    use haodian::db::schema::{products, skus};
    let listed: i64 = products::table
        .filter(products::status.eq("listed"))
        .count()
        .get_result(&mut *app.conn())
        .unwrap();
    let sku_count: i64 = skus::table.count().get_result(&mut *app.conn()).unwrap();
    assert_eq!((listed, sku_count), (150, 1500));
    // Every seeded title is findable through the n-gram index.
    let c = app.client();
    let r = c.get("/search?q=真丝").await;
    r.assert_status(200);
    let expected = (0..150).filter(|s| s % 12 == 1).count();
    assert!(
        r.body.contains(&format!("共 {expected} 件")),
        "{expected} silk products"
    );
    // A second run adds more shops rather than failing on names.
    haodian::seed::scale(&mut app.conn(), 1, &mut |_| {}).unwrap();
}

/// The group-commit writer (SQLite's busiest writes, several requests per transaction): jobs
/// sent at once all get their own result; a job that fails undoes only its own writes, not the
/// others' in its batch; a job that panics fails but the writer goes on with a fresh connection.
#[tokio::test]
async fn group_commit_writer_keeps_jobs_apart() {
    use haodian::db::schema::app_secrets;
    use haodian::db::writer::Writer;
    use haodian::error::AppError;
    let app = spawn_app();
    let writer = std::sync::Arc::new(
        Writer::start(haodian::db::Manager::new(&app.db.url, "FULL")).expect("writer"),
    );
    let now = chrono::Utc::now().naive_utc();
    let jobs = (0..40).map(|i: i64| {
        let w = writer.clone();
        tokio::spawn(async move {
            w.run(move |c| {
                haodian::db::write_tx(c, |c| {
                    diesel::insert_into(app_secrets::table)
                        .values((
                            app_secrets::name.eq(format!("writer-{i}")),
                            app_secrets::value.eq("v"),
                            app_secrets::created_at.eq(now),
                        ))
                        .execute(c)?;
                    if i % 3 == 0 {
                        return Err(AppError::Conflict("test.odd_one_out"));
                    }
                    Ok(i)
                })
            })
            .await
        })
    });
    let results: Vec<_> = futures_util::future::join_all(jobs).await;
    for (i, r) in results.into_iter().enumerate() {
        match r.expect("task") {
            Ok(v) => assert!(v == i as i64 && i % 3 != 0, "job {i} answered Ok({v})"),
            Err(AppError::Conflict(k)) => assert!(k == "test.odd_one_out" && i % 3 == 0),
            Err(e) => panic!("job {i}: {e}"),
        }
    }
    let mut kept: Vec<String> = app_secrets::table
        .filter(app_secrets::name.like("writer-%"))
        .select(app_secrets::name)
        .load(&mut app.conn())
        .expect("rows");
    kept.sort();
    let mut expected: Vec<String> = (0..40)
        .filter(|i| i % 3 != 0)
        .map(|i| format!("writer-{i}"))
        .collect();
    expected.sort();
    assert_eq!(
        kept, expected,
        "exactly the jobs that succeeded were committed"
    );

    let boom = writer
        .run(|c| -> Result<(), AppError> {
            haodian::db::write_tx(c, |_| -> Result<(), AppError> { panic!("a bug in a job") })
        })
        .await;
    assert!(matches!(boom, Err(AppError::Internal(_))), "{boom:?}");
    let after = writer
        .run(move |c| {
            haodian::db::write_tx(c, |c| {
                diesel::insert_into(app_secrets::table)
                    .values((
                        app_secrets::name.eq("writer-after"),
                        app_secrets::value.eq("v"),
                        app_secrets::created_at.eq(now),
                    ))
                    .execute(c)
                    .map_err(AppError::from)
            })
        })
        .await;
    assert_eq!(after.expect("the writer goes on"), 1);
    let n: i64 = app_secrets::table
        .filter(app_secrets::name.eq("writer-after"))
        .count()
        .get_result(&mut app.conn())
        .expect("count");
    assert_eq!(n, 1);
}
