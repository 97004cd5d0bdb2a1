//! Integration tests: the real app over HTTP, on SQLite, and on PostgreSQL when
//! TEST_DATABASE_URL is set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod browser;
mod catalog;
mod common;
mod dsr;
mod flows;
mod governance;
mod i18n;
mod orders;
mod platform;
mod ratings;
mod security;
mod shops;
