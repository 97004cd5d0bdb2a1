//! Order rows and the order status, parsed from its stored text.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::{addresses, order_events, order_lines, orders};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderStatus {
    PendingPayment,
    Paid,
    Shipped,
    Delivered,
    Completed,
    Cancelled,
    /// Closed after a full refund.
    Closed,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 7] = [
        OrderStatus::PendingPayment,
        OrderStatus::Paid,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
        OrderStatus::Completed,
        OrderStatus::Cancelled,
        OrderStatus::Closed,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::PendingPayment => "pending_payment",
            OrderStatus::Paid => "paid",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Delivered => "delivered",
            OrderStatus::Completed => "completed",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Closed => "closed",
        }
    }
    pub fn parse(s: &str) -> Option<OrderStatus> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = orders)]
pub struct Order {
    pub id: i64,
    pub order_no: String,
    pub checkout_id: i64,
    pub buyer_id: i64,
    pub shop_id: i64,
    pub status: String,
    pub items_fen: i64,
    pub shipping_fen: i64,
    pub total_fen: i64,
    pub refunded_fen: i64,
    pub recipient: String,
    pub phone: String,
    pub region: String,
    pub address_detail: String,
    pub buyer_note: String,
    pub carrier: Option<String>,
    pub tracking_no: Option<String>,
    pub cancel_reason: String,
    pub created_at: NaiveDateTime,
    pub pay_deadline: NaiveDateTime,
    pub paid_at: Option<NaiveDateTime>,
    pub shipped_at: Option<NaiveDateTime>,
    pub delivered_at: Option<NaiveDateTime>,
    pub completed_at: Option<NaiveDateTime>,
    pub cancelled_at: Option<NaiveDateTime>,
}

impl Order {
    pub fn state(&self) -> Option<OrderStatus> {
        OrderStatus::parse(&self.status)
    }
    pub fn is(&self, s: OrderStatus) -> bool {
        self.status == s.as_str()
    }
    /// The buyer may still cancel (before shipping).
    pub fn buyer_can_cancel(&self) -> bool {
        self.is(OrderStatus::PendingPayment) || self.is(OrderStatus::Paid)
    }
    pub fn buyer_can_confirm(&self) -> bool {
        self.is(OrderStatus::Shipped) || self.is(OrderStatus::Delivered)
    }
    /// The phone with its middle digits hidden, as shown to shop staff in lists.
    pub fn masked_phone(&self) -> String {
        mask_phone(&self.phone)
    }
}

pub fn mask_phone(p: &str) -> String {
    if p.len() == 11 && p.is_ascii() {
        format!("{}****{}", &p[..3], &p[7..])
    } else {
        p.to_string()
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = order_lines)]
pub struct OrderLine {
    pub id: i64,
    pub order_id: i64,
    pub sku_id: i64,
    pub product_id: i64,
    pub title: String,
    pub sku_label: String,
    pub cover_media_id: Option<i64>,
    pub price_fen: i64,
    pub quantity: i64,
    pub restocked: bool,
}

impl OrderLine {
    pub fn amount(&self) -> i64 {
        self.price_fen * self.quantity
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = order_events)]
pub struct OrderEvent {
    pub kind: String,
    pub note: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = addresses)]
pub struct Address {
    pub id: i64,
    pub user_id: i64,
    pub recipient: String,
    pub phone: String,
    pub province: String,
    pub city: String,
    pub district: String,
    pub detail: String,
    pub is_default: bool,
}

impl Address {
    pub fn region(&self) -> String {
        format!("{} {} {}", self.province, self.city, self.district)
    }
}
