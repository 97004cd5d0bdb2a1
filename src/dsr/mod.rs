//! Store scoring: the buyer-rating DSR and the experience score (体验分), computed nightly into
//! immutable per-day snapshots, with the tiers and clearance that follow, the daily
//! recommended shops, and the pages that show them.

pub mod formula;
pub mod job;
pub mod routes;
pub mod rules;
pub mod score;
pub mod service;
