//! Accounts: users, roles, sessions, sign-up and login, password reset, email verification.

pub mod model;
pub mod password;
pub mod routes;
pub mod service;
pub mod session;
pub mod throttle;
pub mod totp;

pub use model::{Role, User};
pub use session::{SessionUser, Viewer};
