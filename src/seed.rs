//! Demo data: a few accounts of each role with known passwords, so a newcomer can log in at
//! once, and shops bound to the merchants' accounts. Later issues add products, orders and
//! ratings here.

use crate::accounts::{service, Role, SessionUser, User};
use crate::db::DbConn;
use crate::error::AppError;
use crate::shops::model::QualificationKind;
use crate::shops::service as shops;

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

/// A 1×1 PNG standing in for scanned licences in the demo.
const DOC_PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0xF8, 0xCF, 0xC0, 0xF0,
    0x1F, 0x00, 0x05, 0x00, 0x01, 0xFF, 0x89, 0x99, 0x3D, 0x1D, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
];

struct DemoShop {
    owner: &'static str,
    name: &'static str,
    slug: &'static str,
    category: &'static str,
    entity: &'static str,
    description: &'static str,
    qualifications: &'static [(QualificationKind, &'static str)],
}

const DEMO_SHOPS: &[DemoShop] = &[
    DemoShop {
        owner: "demo_merchant",
        name: "山野茶铺",
        slug: "shanye-tea",
        category: "food",
        entity: "enterprise",
        description: "武夷山脚下的家庭茶园，岩茶、白茶与花草茶。\n每一批茶都附检测报告。",
        qualifications: &[
            (QualificationKind::BusinessLicense, "91350782MA2YQ8K37C"),
            (QualificationKind::FoodLicense, "JY13507820012345"),
        ],
    },
    DemoShop {
        owner: "demo_brand",
        name: "青禾服饰旗舰店",
        slug: "qinghe",
        category: "apparel",
        entity: "brand_flagship",
        description: "青禾官方旗舰店：天然面料的日常通勤服饰。",
        qualifications: &[
            (QualificationKind::BusinessLicense, "91330106MA2H4T8Q5C"),
            (QualificationKind::BrandAuthorization, "QH-BA-2026-001"),
        ],
    },
];

/// A seeding stand-in for a signed-in user.
fn as_session(u: &User) -> SessionUser {
    SessionUser {
        id: u.id,
        session_id: 0,
        email: u.email.clone(),
        handle: u.handle.clone(),
        display_name: u.display_name.clone(),
        roles: Vec::new(),
        locale: None,
        email_verified: true,
        avatar_media_id: None,
    }
}

/// Seeds the demo accounts and shops; returns the lines to print. Fails when any exists.
pub fn demo(conn: &mut DbConn) -> Result<Vec<String>, AppError> {
    let mut lines = vec![format!(
        "demo accounts (password for all: {DEMO_PASSWORD}):"
    )];
    let mut users = Vec::new();
    for (email, handle, name, role) in DEMO_ACCOUNTS {
        let user = service::create_user(conn, email, handle, name, DEMO_PASSWORD, *role, None)
            .map_err(|e| match e {
                AppError::Invalid(_) => {
                    AppError::Internal(format!("demo account {email} exists already or is invalid"))
                }
                other => other,
            })?;
        lines.push(format!("  {:<10} {email}", role.as_str()));
        users.push(user);
    }
    let now = chrono::Utc::now().naive_utc();
    let categories = shops::categories(conn)?;
    for d in DEMO_SHOPS {
        let Some(user) = users.iter().find(|u| u.handle == d.owner) else {
            continue;
        };
        let category_id = categories
            .iter()
            .find(|c| c.slug == d.category)
            .map(|c| c.id.to_string())
            .unwrap_or_default();
        let form = shops::OpenShopForm {
            name: d.name.to_string(),
            slug: d.slug.to_string(),
            description: d.description.to_string(),
            main_category_id: category_id,
            entity_type: d.entity.to_string(),
            qualifications: d
                .qualifications
                .iter()
                .map(|(k, n)| (*k, n.to_string(), Some(DOC_PNG.to_vec())))
                .collect(),
        };
        shops::open_shop(conn, &as_session(user), &form, now)
            .map_err(|e| AppError::Internal(format!("demo shop {}: {e}", d.slug)))?;
        lines.push(format!(
            "  shop       /shops/{} (official account @{})",
            d.slug, d.owner
        ));
    }
    // The buyers follow the shops' accounts and the creator.
    for follower in users.iter().filter(|u| u.handle.starts_with("demo_buyer")) {
        for target in ["demo_merchant", "demo_brand", "demo_creator"] {
            shops::follow(conn, &as_session(follower), target, now)?;
        }
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
