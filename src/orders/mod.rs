//! Orders from cart to completion: cart, addresses, checkout that never oversells, payment
//! through a provider trait (a simulated provider built in), shipping, confirmation, and the
//! jobs that cancel unpaid and confirm delivered orders.

pub mod complaints;
pub mod model;
pub mod payment;
pub mod refunds;
pub mod routes;
pub mod service;

pub use model::{Order, OrderStatus};
