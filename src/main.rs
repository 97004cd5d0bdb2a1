//! The `haodian` command: a thin CLI over the library.
#![forbid(unsafe_code)]

use std::io::Read;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use haodian::accounts::{service, Role};
use haodian::app::{self, BuildOptions};
use haodian::config::Settings;
use haodian::error::AppError;

#[derive(Parser)]
#[command(
    name = "haodian",
    version,
    about = "号店一体 — account and shop as one"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the web server (migrates first).
    Serve {
        /// Listen address, e.g. 0.0.0.0:8080 (default HAODIAN_BIND or 127.0.0.1:8080).
        #[arg(long)]
        bind: Option<String>,
        /// Do not run scheduled jobs in this process.
        #[arg(long)]
        no_scheduler: bool,
        /// Seed demo data when the database is empty.
        #[arg(long)]
        demo: bool,
    },
    /// Apply pending database migrations.
    Migrate,
    /// Manage accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Seed data.
    Seed {
        /// Demo accounts, shops and products with known passwords.
        #[arg(long)]
        demo: bool,
        /// Benchmark data: a shop with 60 listed products, one of them with 10 SKUs.
        #[arg(long)]
        bench: bool,
        /// Scale data: N shops with 50 listed products of 10 SKUs each (2000 → 1,000,000 SKUs);
        /// with --ratings, N shops with orders and ratings for the nightly scoring instead.
        #[arg(long, value_name = "N")]
        shops: Option<usize>,
        /// With --shops N: M ratings on as many completed orders (plus 30% unrated orders),
        /// shipments, refunds and complaints, spread unevenly over the N shops.
        #[arg(long, value_name = "M", requires = "shops")]
        ratings: Option<usize>,
    },
    /// Store scoring.
    Dsr {
        #[command(subcommand)]
        command: DsrCommand,
    },
    /// Scheduled jobs.
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// Platform governance.
    Governance {
        #[command(subcommand)]
        command: GovernanceCommand,
    },
}

#[derive(Subcommand)]
enum GovernanceCommand {
    /// Re-check every listed product against the rules in force: blocking terms and missing
    /// qualifications record automatic violations; terms that need a moderator send the
    /// product back to review.
    Rescan,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a verified account; the password is read from standard input.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        handle: String,
        /// buyer, creator, merchant, moderator or admin.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Display name (defaults to the handle).
        #[arg(long)]
        name: Option<String>,
        /// Read the password from standard input (required: passwords never go in arguments).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
enum DsrCommand {
    /// Score one platform day for every shop: DSR, experience score, tiers, clearance,
    /// recommended shops. Safe to run twice and on several nodes at once.
    Score {
        /// The platform day (YYYY-MM-DD); default yesterday. Past days backfill.
        #[arg(long, value_parser = parse_date)]
        date: Option<chrono::NaiveDate>,
    },
}

fn parse_date(s: &str) -> Result<chrono::NaiveDate, String> {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("expected a date like 2026-11-29, got {s:?}"))
}

#[derive(Subcommand)]
enum JobsCommand {
    /// Run every job that is due now, once.
    Run,
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s)
        .ok_or_else(|| format!("unknown role {s:?} (buyer, creator, merchant, moderator, admin)"))
}

/// Logs go to stderr; the server logs at info, one-shot commands only warnings (override with
/// RUST_LOG). The server's informational lines are buffered (`haodian::logs`); the returned
/// guard writes out the rest when it is dropped. Colours only on a terminal.
fn init_logging(json: bool, serving: bool) -> Option<haodian::logs::FlushGuard> {
    use std::io::IsTerminal;
    let default = if serving {
        "info,actix_server=warn"
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal());
    let (writer, guard) = if serving {
        let (w, g) = haodian::logs::Buffered::new(std::io::stderr());
        (
            tracing_subscriber::fmt::writer::BoxMakeWriter::new(w),
            Some(g),
        )
    } else {
        (
            tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::io::stderr),
            None,
        )
    };
    let b = b.with_writer(writer);
    if json {
        b.json().init();
    } else {
        b.init();
    }
    guard
}

/// Folds a multi-line message (drivers' errors often have several) into one line.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// One line for a failed command.
fn describe(e: &AppError) -> String {
    match e {
        AppError::Invalid(fields) => {
            let parts: Vec<String> = fields
                .0
                .iter()
                .map(|(f, codes)| {
                    format!(
                        "{f}: {}",
                        haodian::i18n::t(
                            haodian::i18n::Locale::En,
                            &format!("validation.{}", codes.join(","))
                        )
                    )
                })
                .collect();
            format!("invalid input — {}", parts.join("; "))
        }
        AppError::Internal(m) => m.clone(),
        other => other.to_string(),
    }
}

/// Parses the command line; usage errors are one line and exit 2, help and version print as usual.
fn parse_cli() -> Result<Cli, ExitCode> {
    use clap::error::ErrorKind;
    let cli = Cli::try_parse().and_then(|cli| match cli.command {
        Command::Seed {
            shops: Some(0),
            ratings: Some(m),
            ..
        } if m > 0 => {
            use clap::CommandFactory;
            Err(Cli::command().error(
                ErrorKind::ValueValidation,
                "--ratings needs at least one shop: --shops 1 or more",
            ))
        }
        _ => Ok(cli),
    });
    cli.map_err(|e| match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::from(2)
        }
        _ => {
            let text = e.render().to_string();
            let head: Vec<&str> = text.lines().take_while(|l| !l.trim().is_empty()).collect();
            eprintln!("{} (see haodian --help)", one_line(&head.join(" ")));
            ExitCode::from(2)
        }
    })
}

fn main() -> ExitCode {
    let cli = match parse_cli() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {}", one_line(&describe(&e)));
            return ExitCode::from(2);
        }
    };
    let _flush = init_logging(
        settings.log_json,
        matches!(cli.command, Command::Serve { .. }),
    );
    match run(cli.command, settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&describe(&e)));
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command, mut settings: Settings) -> Result<(), AppError> {
    match command {
        Command::Serve {
            bind,
            no_scheduler,
            demo,
        } => {
            if let Some(b) = bind {
                if std::env::var("HAODIAN_BASE_URL").is_err() {
                    settings.base_url = format!("http://{b}");
                }
                settings.bind = b;
            }
            actix_web::rt::System::new().block_on(async move {
                if demo {
                    let pool = app::open_command_database(&settings)?;
                    if let Some(lines) = haodian::seed::demo_if_empty(&mut *pool.get()?, &settings)?
                    {
                        println!("{}", lines.join("\n"));
                    }
                }
                let running = app::build(
                    settings.clone(),
                    BuildOptions {
                        scheduler: !no_scheduler,
                    },
                )
                .await?;
                let backend = haodian::db::Backend::of_url(&settings.database_url).name();
                println!("haodian listening on http://{} ({backend})", settings.bind);
                running.server.await.map_err(AppError::internal)
            })
        }
        Command::Migrate => {
            let pool = haodian::db::build_pool_idle(
                &settings.database_url,
                1,
                &settings.sqlite_synchronous,
                0,
            )?;
            let n = haodian::db::migrate(&mut *pool.get()?)?;
            println!("migrations applied: {n}");
            Ok(())
        }
        Command::User {
            command:
                UserCommand::Create {
                    email,
                    handle,
                    role,
                    name,
                    password_stdin: _,
                },
        } => {
            let mut password = String::new();
            std::io::stdin()
                .read_to_string(&mut password)
                .map_err(|e| AppError::Internal(format!("cannot read password from stdin: {e}")))?;
            let password = password.trim_end_matches(['\n', '\r']);
            let pool = app::open_command_database(&settings)?;
            let user = service::create_user(
                &mut *pool.get()?,
                &email,
                &handle,
                name.as_deref().unwrap_or(&handle),
                password,
                role,
                None,
            )?;
            println!(
                "created {} (@{}, id {}) with role {}",
                user.email,
                user.handle,
                user.id,
                role.as_str()
            );
            Ok(())
        }
        Command::Seed {
            demo,
            bench,
            shops,
            ratings,
        } => {
            if !demo && !bench && shops.is_none() {
                return Err(AppError::Internal(
                    "nothing to seed: pass --demo, --bench or --shops N".into(),
                ));
            }
            let pool = app::open_command_database(&settings)?;
            if demo {
                println!(
                    "{}",
                    haodian::seed::demo(&mut *pool.get()?, &settings)?.join("\n")
                );
            }
            if bench {
                println!(
                    "{}",
                    haodian::seed::bench(&mut *pool.get()?, &settings)?.join("\n")
                );
            }
            if let (Some(n), Some(m)) = (shops, ratings) {
                let started = std::time::Instant::now();
                let mut report = |what: &str| {
                    eprintln!("seeded {what} ({:.0} s)", started.elapsed().as_secs_f64())
                };
                let lines = haodian::seed::scoring_scale(
                    &mut *pool.get()?,
                    n,
                    m,
                    settings.tz,
                    &mut report,
                )?;
                println!("{}", lines.join("\n"));
                return Ok(());
            }
            if let Some(n) = shops {
                let started = std::time::Instant::now();
                let mut report = |done: usize| {
                    if done % 200 == 0 || done == n {
                        eprintln!(
                            "seeded {done}/{n} shops ({:.0} s)",
                            started.elapsed().as_secs_f64()
                        );
                    }
                };
                println!(
                    "{}",
                    haodian::seed::scale(&mut *pool.get()?, n, &mut report)?.join("\n")
                );
            }
            Ok(())
        }
        Command::Dsr {
            command: DsrCommand::Score { date },
        } => {
            use haodian::dsr::job::{self, RunOutcome};
            let now = chrono::Utc::now().naive_utc();
            let today = job::platform_day(settings.tz, now);
            let day = date.unwrap_or(today - chrono::Duration::days(1));
            if day >= today {
                return Err(AppError::Internal(format!(
                    "{day} has not ended yet in {} (score days up to {})",
                    settings.tz,
                    today - chrono::Duration::days(1)
                )));
            }
            let pool = app::open_command_database(&settings)?;
            let node = format!("cli@{}", haodian::jobs::node_name());
            match job::run(&mut *pool.get()?, &settings, day, &node, now)? {
                RunOutcome::Scored(s) => println!("dsr score {day}: {s}"),
                RunOutcome::AlreadyDone => {
                    println!("dsr score {day}: already scored, nothing to do")
                }
                RunOutcome::RunningElsewhere(n) => {
                    println!("dsr score {day}: being scored by {n}, nothing to do")
                }
            }
            Ok(())
        }
        Command::Governance {
            command: GovernanceCommand::Rescan,
        } => {
            let pool = app::open_command_database(&settings)?;
            let now = chrono::Utc::now().naive_utc();
            let report =
                haodian::governance::rescan::run(&mut *pool.get()?, settings.tz, now, 500)?;
            println!("governance rescan: {report}");
            Ok(())
        }
        Command::Jobs {
            command: JobsCommand::Run,
        } => {
            let pool = app::open_command_database(&settings)?;
            let transport = haodian::mail::Transport::from_url(&settings.mail_url)?;
            let outcomes = haodian::jobs::run_due(
                &pool,
                &settings,
                &transport,
                &app::jobs(),
                &haodian::jobs::node_name(),
            );
            let mut failed = false;
            for o in outcomes {
                match (&o.skipped, &o.result) {
                    (Some(why), _) => println!("{} {}: skipped ({why})", o.job, o.period),
                    (None, Ok(d)) => println!("{} {}: ok {d}", o.job, o.period),
                    (None, Err(e)) => {
                        failed = true;
                        println!("{} {}: failed: {e}", o.job, o.period)
                    }
                }
            }
            if failed {
                Err(AppError::Internal("some jobs failed".into()))
            } else {
                Ok(())
            }
        }
    }
}
