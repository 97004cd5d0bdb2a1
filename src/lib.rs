//! haodian (号店): account and shop as one — a server-rendered commerce platform with store
//! scoring and governance. `main.rs` is a thin CLI over this library.
#![forbid(unsafe_code)]

pub mod accounts;
pub mod app;
pub mod cache;
pub mod catalog;
pub mod clock;
pub mod config;
pub mod db;
pub mod dsr;
pub mod error;
pub mod governance;
pub mod i18n;
pub mod jobs;
pub mod logs;
pub mod mail;
pub mod orders;
pub mod pagination;
pub mod ratings;
pub mod seed;
pub mod shops;
pub mod site;
pub mod web;
