//! Governance: the rules engine and listing review, violations with their penalty points,
//! penalties that shape a shop's status, appeals, and the enforcement other modules trigger.

pub mod appeals;
pub mod audit;
pub mod editor;
pub mod enforce;
pub mod points;
pub mod rescan;
pub mod routes;
pub mod rules;
pub mod violations;
