//! Catalog: categories live with shops; here products (SPU), SKUs, the listing workflow and
//! what buyers see.

pub mod model;
pub mod routes;
pub mod search;
pub mod service;
