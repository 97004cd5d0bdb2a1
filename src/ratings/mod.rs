//! Buyer ratings: one per completed order within the rating window, three 1–5 star
//! dimensions (as described, service, logistics), text and photos; immutable once given; the
//! shop may reply once. The nightly scoring (`dsr`) reads them.

pub mod model;
pub mod routes;
pub mod service;
