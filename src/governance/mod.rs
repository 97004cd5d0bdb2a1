//! Governance: the rules engine and listing review, and enforcement on shops (violations,
//! penalties and appeals arrive with their issue).

pub mod enforce;
pub mod rules;
