//! Site pages that belong to no single feature: home, the per-role dashboards, health and
//! metrics. Later issues fill the dashboards.

pub mod routes;
