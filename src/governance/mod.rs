//! Governance: the rules engine and listing review (violations, penalties and appeals arrive
//! with their issue).

pub mod rules;
