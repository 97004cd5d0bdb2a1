//! Database access for both backends from one codebase.
//!
//! `DbConn` is a diesel `MultiConnection` over PostgreSQL and SQLite; the backend is chosen by
//! the URL scheme (never by trial, so a mistyped PostgreSQL URL can not silently create a SQLite
//! file). SQLite connections get their pragmas when they are opened, and every writing
//! transaction on SQLite starts with `BEGIN IMMEDIATE` (see [`write_tx`]).

pub mod fixed;
pub mod json_rows;
pub mod schema;
pub mod writer;

use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::prelude::*;
use diesel::r2d2::R2D2Connection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::error::AppError;

#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Postgres(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

/// Runs `$body` with `$c` bound to the backend's own connection type. The escape hatch for
/// what the multi-backend enum can not express (upserts, multi-row inserts), and the way the
/// busiest public reads run: diesel's multi-backend wrapper builds a query's SQL text twice on
/// every execution (even when the prepared statement is cached), which perf showed at ~15% of
/// a product page's CPU; on the backend's own connection a cached statement is found by type.
/// The body is expanded once per backend, so build the query inside it.
#[macro_export]
macro_rules! per_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::DbConn::Postgres($c) => $body,
            $crate::db::DbConn::Sqlite($c) => $body,
        }
    };
}

pub type Pool = r2d2::Pool<Manager>;
pub type PooledConn = r2d2::PooledConnection<Manager>;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    pub fn of_url(url: &str) -> Backend {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        }
    }
}

impl DbConn {
    pub fn backend(&self) -> Backend {
        match self {
            DbConn::Postgres(_) => Backend::Postgres,
            DbConn::Sqlite(_) => Backend::Sqlite,
        }
    }
}

/// SQLite file path from a `sqlite://path`, `sqlite:path` or bare path URL.
pub fn sqlite_path(url: &str) -> &str {
    url.strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url)
}

/// r2d2 manager that picks the backend by URL scheme and applies SQLite pragmas.
#[derive(Debug, Clone)]
pub struct Manager {
    url: String,
    sqlite_synchronous: String,
}

impl Manager {
    pub fn new(url: &str, sqlite_synchronous: &str) -> Manager {
        Manager {
            url: url.to_string(),
            sqlite_synchronous: sqlite_synchronous.to_string(),
        }
    }

    pub fn establish(&self) -> Result<DbConn, diesel::r2d2::Error> {
        match Backend::of_url(&self.url) {
            Backend::Postgres => diesel::PgConnection::establish(&self.url)
                .map(DbConn::Postgres)
                .map_err(diesel::r2d2::Error::ConnectionError),
            Backend::Sqlite => {
                let mut c = diesel::SqliteConnection::establish(sqlite_path(&self.url))
                    .map_err(diesel::r2d2::Error::ConnectionError)?;
                // busy_timeout first: switching to WAL itself may wait for another writer.
                c.batch_execute(&format!(
                    "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = {}; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;",
                    self.sqlite_synchronous
                ))
                .map_err(diesel::r2d2::Error::QueryError)?;
                Ok(DbConn::Sqlite(c))
            }
        }
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = DbConn;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConn, Self::Error> {
        self.establish()
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), Self::Error> {
        conn.batch_execute("SELECT 1")
            .map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConn) -> bool {
        per_backend!(conn, |c| c.is_broken())
    }
}

/// Builds the pool. Fails fast (with the database's own message) when the database can not be
/// reached, so the CLI can print one clear line.
pub fn build_pool(url: &str, size: u32, sqlite_synchronous: &str) -> Result<Pool, AppError> {
    build_pool_idle(url, size, sqlite_synchronous, 1)
}

/// A pool that keeps `min_idle` connections open. One-shot commands use 0: with an idle
/// minimum, taking the last idle connection makes r2d2 open a replacement on a helper thread,
/// and a command that ends meanwhile exits in the middle of that connection's TLS handshake,
/// which crashed the process (SIGSEGV in OpenSSL's exit handlers) after it had done its work.
pub fn build_pool_idle(
    url: &str,
    size: u32,
    sqlite_synchronous: &str,
    min_idle: u32,
) -> Result<Pool, AppError> {
    let manager = Manager::new(url, sqlite_synchronous);
    // Probe once so the error is the driver's, not r2d2's generic timeout.
    manager
        .establish()
        .map_err(|e| AppError::Internal(format!("cannot connect to database: {e}")))?;
    r2d2::Pool::builder()
        .max_size(size)
        .min_idle(Some(min_idle))
        // No `SELECT 1` before every use (seven round trips per order on the checkout path);
        // a connection that broke is found by `has_broken` and replaced.
        .test_on_check_out(false)
        .connection_timeout(Duration::from_secs(10))
        .build(manager)
        .map_err(|e| AppError::Internal(format!("cannot connect to database: {e}")))
}

/// Runs pending migrations of the connection's backend. On PostgreSQL an advisory lock keeps
/// several nodes that start at once from migrating concurrently.
pub fn migrate(conn: &mut DbConn) -> Result<usize, AppError> {
    let err = |e: Box<dyn std::error::Error + Send + Sync>| {
        AppError::Internal(format!("migration failed: {e}"))
    };
    match conn {
        DbConn::Postgres(c) => {
            c.batch_execute("SELECT pg_advisory_lock(7263001)")?;
            let result = c
                .run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(|v| v.len())
                .map_err(err);
            c.batch_execute("SELECT pg_advisory_unlock(7263001)")?;
            result
        }
        DbConn::Sqlite(c) => c
            .run_pending_migrations(SQLITE_MIGRATIONS)
            .map(|v| v.len())
            .map_err(err),
    }
}

/// One SQLite writer at a time per process (SQLite allows one anyway); see [`write_tx`]. Other
/// processes on the same file still meet the busy timeout.
static SQLITE_WRITER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A writing unit of work. On SQLite it begins with `BEGIN IMMEDIATE`, so the write lock is
/// taken up front and a transaction that reads before it writes can not fail with SQLITE_BUSY
/// half way; inside an open transaction it becomes a savepoint. On PostgreSQL it is a plain
/// transaction.
pub fn write_tx<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    let mut _writer = None;
    let immediate = match conn {
        DbConn::Sqlite(c) => {
            let depth = <AnsiTransactionManager as TransactionManager<diesel::SqliteConnection>>::transaction_manager_status_mut(c)
                .transaction_depth()?;
            if depth.is_none() {
                // Writers of this process queue here, woken the moment the lock is free,
                // instead of in SQLite's busy handler, which sleeps 1, 2, 5 … 100 ms between
                // tries (measured: checkout p99 136-238 ms with it, 33-37 ms with this queue).
                _writer = Some(SQLITE_WRITER.lock().unwrap_or_else(|e| e.into_inner()));
                AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?;
                true
            } else {
                false
            }
        }
        DbConn::Postgres(_) => false,
    };
    if !immediate {
        return conn.transaction(f);
    }
    let result = f(conn);
    let DbConn::Sqlite(c) = conn else {
        return Err(diesel::result::Error::BrokenTransactionManager.into());
    };
    type Tm = AnsiTransactionManager;
    match result {
        Ok(value) => {
            <Tm as TransactionManager<diesel::SqliteConnection>>::commit_transaction(c)?;
            Ok(value)
        }
        Err(user_error) => {
            match <Tm as TransactionManager<diesel::SqliteConnection>>::rollback_transaction(c) {
                Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => Err(user_error),
                Err(rollback_error) => Err(rollback_error.into()),
            }
        }
    }
}

struct Begin;
impl fixed::FixedSql for Begin {
    const PIECES: &'static [&'static str] = &["BEGIN"];
}
struct Commit;
impl fixed::FixedSql for Commit {
    const PIECES: &'static [&'static str] = &["COMMIT"];
}

/// A unit of work that only reads. On SQLite it is one (deferred) transaction, so its
/// statements share one shared lock and WAL read mark and see one snapshot; `BEGIN` and `COMMIT`
/// are cached statements ([`fixed::Fixed`]) rather than diesel's, which are parsed again on
/// every call (`sqlite3_exec`: 3–4 % of a product page's CPU in `perf`). diesel knows of the
/// transaction, so a `transaction()` inside `f` is a savepoint as usual. On PostgreSQL `f`
/// runs as it is (a transaction would be two more round trips).
pub fn read_tx<T>(
    conn: &mut DbConn,
    f: impl FnOnce(&mut DbConn) -> Result<T, AppError>,
) -> Result<T, AppError> {
    use diesel::connection::TransactionDepthChange::{DecreaseDepth, IncreaseDepth};
    type Tm = AnsiTransactionManager;
    fn status(
        c: &mut diesel::SqliteConnection,
    ) -> QueryResult<&mut diesel::connection::ValidTransactionManagerStatus> {
        match <Tm as TransactionManager<diesel::SqliteConnection>>::transaction_manager_status_mut(
            c,
        ) {
            diesel::connection::TransactionManagerStatus::Valid(v) => Ok(v),
            diesel::connection::TransactionManagerStatus::InError => {
                Err(diesel::result::Error::BrokenTransactionManager)
            }
        }
    }
    let DbConn::Sqlite(c) = conn else {
        return f(conn);
    };
    if status(c)?.transaction_depth().is_some() {
        return conn.transaction(f);
    }
    fixed::Fixed::<Begin>::new(Vec::new()).execute(c)?;
    status(c)?.change_transaction_depth(IncreaseDepth)?;
    let result = f(conn);
    let DbConn::Sqlite(c) = conn else {
        return Err(diesel::result::Error::BrokenTransactionManager.into());
    };
    let rollback = |c: &mut diesel::SqliteConnection| {
        <Tm as TransactionManager<diesel::SqliteConnection>>::rollback_transaction(c)
    };
    match result {
        Ok(value) => match fixed::Fixed::<Commit>::new(Vec::new()).execute(c) {
            Ok(_) => {
                status(c)?.change_transaction_depth(DecreaseDepth)?;
                Ok(value)
            }
            Err(commit_error) => {
                rollback(c)?;
                Err(commit_error.into())
            }
        },
        Err(e) => {
            rollback(c)?;
            Err(e)
        }
    }
}

/// Whether an error is a unique-constraint violation (same on both backends).
/// Runs `f` with a session setting changed by the statement `on`, and puts it back with `off`
/// whether or not `f` succeeded (`f`'s own error is the one returned). For the connection's
/// own settings (a PRAGMA, a `SET`), so a pooled connection goes back as it came.
pub fn with_setting<T>(
    conn: &mut DbConn,
    on: &str,
    off: &str,
    f: impl FnOnce(&mut DbConn) -> Result<T, AppError>,
) -> Result<T, AppError> {
    conn.batch_execute(on)?;
    let result = f(conn);
    let reset = conn.batch_execute(off);
    let value = result?;
    reset?;
    Ok(value)
}

pub fn is_unique_violation(e: &diesel::result::Error) -> bool {
    matches!(
        e,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}

/// A LIKE pattern matching `q` as a substring, with LIKE's wildcards escaped (use with
/// `.escape('\\')`).
pub fn like_pattern(q: &str) -> String {
    format!(
        "%{}%",
        q.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    )
}
