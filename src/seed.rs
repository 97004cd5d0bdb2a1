//! Demo data: a few accounts of each role with known passwords, so a newcomer can log in at
//! once. Later issues add shops, products, orders and ratings here.

use crate::accounts::{service, Role};
use crate::db::DbConn;
use crate::error::AppError;

/// The demo password of every demo account (printed when seeding).
pub const DEMO_PASSWORD: &str = "haodian-demo-2026";

pub const DEMO_ACCOUNTS: &[(&str, &str, &str, Role)] = &[
    (
        "admin@demo.haodian.cn",
        "demo_admin",
        "平台管理员",
        Role::Admin,
    ),
    (
        "moderator@demo.haodian.cn",
        "demo_moderator",
        "审核员小周",
        Role::Moderator,
    ),
    (
        "merchant@demo.haodian.cn",
        "demo_merchant",
        "山野茶铺",
        Role::Merchant,
    ),
    (
        "brand@demo.haodian.cn",
        "demo_brand",
        "青禾服饰旗舰店",
        Role::Merchant,
    ),
    (
        "creator@demo.haodian.cn",
        "demo_creator",
        "美妆达人阿May",
        Role::Creator,
    ),
    (
        "buyer@demo.haodian.cn",
        "demo_buyer",
        "买家小林",
        Role::Buyer,
    ),
    (
        "buyer2@demo.haodian.cn",
        "demo_buyer2",
        "Lucy Chen",
        Role::Buyer,
    ),
];

/// Seeds the demo accounts; returns the lines to print. Fails when any of them exists.
pub fn demo(conn: &mut DbConn) -> Result<Vec<String>, AppError> {
    let mut lines = vec![format!(
        "demo accounts (password for all: {DEMO_PASSWORD}):"
    )];
    for (email, handle, name, role) in DEMO_ACCOUNTS {
        service::create_user(conn, email, handle, name, DEMO_PASSWORD, *role, None).map_err(
            |e| match e {
                AppError::Invalid(_) => {
                    AppError::Internal(format!("demo account {email} exists already or is invalid"))
                }
                other => other,
            },
        )?;
        lines.push(format!("  {:<10} {email}", role.as_str()));
    }
    Ok(lines)
}

/// Seeds demo data only into an empty database (for `serve --demo`).
pub fn demo_if_empty(conn: &mut DbConn) -> Result<Option<Vec<String>>, AppError> {
    if service::count_users(conn)? > 0 {
        return Ok(None);
    }
    demo(conn).map(Some)
}
