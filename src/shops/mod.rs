//! Shops bound to their official account (号店一体): opening, staff, authorized accounts,
//! follows, account profiles and storefronts.

pub mod model;
pub mod routes;
pub mod service;

pub use model::{Shop, ShopRole, ShopStatus};
