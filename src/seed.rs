//! Demo data: a few accounts of each role with known passwords, so a newcomer can log in at
//! once, and shops bound to the merchants' accounts. Later issues add products, orders and
//! ratings here.

mod scoring;

pub use scoring::seed as scoring_scale;

use crate::accounts::{service, Role, SessionUser, User};
use crate::config::Settings;
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
        "orchard@demo.haodian.cn",
        "demo_orchard",
        "彩云果园",
        Role::Merchant,
    ),
    (
        "linen@demo.haodian.cn",
        "demo_linen",
        "棉麻小铺",
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
    DemoShop {
        owner: "demo_orchard",
        name: "彩云果园",
        slug: "caiyun-orchard",
        category: "food",
        entity: "individual",
        description: "云南昭通高原果园直发。",
        qualifications: &[(QualificationKind::FoodLicense, "JY15306020054321")],
    },
    DemoShop {
        owner: "demo_linen",
        name: "棉麻小铺",
        slug: "mianma",
        category: "apparel",
        entity: "individual",
        description: "手工棉麻小店。",
        qualifications: &[],
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
        mfa: Default::default(),
    }
}

/// Seeds the demo accounts and shops; returns the lines to print. Fails when any exists.
pub fn demo(conn: &mut DbConn, settings: &Settings) -> Result<Vec<String>, AppError> {
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
    for (owner, products) in DEMO_PRODUCTS {
        let Some(user) = users.iter().find(|u| u.handle == *owner) else {
            continue;
        };
        for (i, p) in products.iter().enumerate() {
            demo_product(conn, &as_session(user), &categories, p, i, now)?;
        }
        lines.push(format!(
            "  products   {} listed for @{owner}",
            products.len()
        ));
    }
    // The buyers follow the shops' accounts and the creator.
    for follower in users.iter().filter(|u| u.handle.starts_with("demo_buyer")) {
        for target in ["demo_merchant", "demo_brand", "demo_creator"] {
            shops::follow(conn, &as_session(follower), target, now)?;
        }
    }
    demo_orders(conn, &users, now)?;
    lines.push("  orders     demo_buyer has orders to pay, to receive and completed; the shops have orders to ship".into());
    lines.extend(demo_history(conn, settings, &users, now)?);
    lines.extend(demo_governance(conn, settings, &users, now)?);
    Ok(lines)
}

/// Governance on the demo shops: a general violation on 棉麻小铺 and a serious one on 青禾
/// (which reaches the 12-point node: restricted 7 days) that its owner has appealed, so the
/// merchant pages, the appeals queue and the shop records have something to show.
fn demo_governance(
    conn: &mut DbConn,
    settings: &Settings,
    users: &[User],
    now: chrono::NaiveDateTime,
) -> Result<Vec<String>, AppError> {
    use crate::db::schema::shops as shop_t;
    use crate::governance::{appeals, violations as gv};
    use diesel::prelude::*;
    let find = |h: &str| users.iter().find(|u| u.handle == h).map(as_session);
    let (Some(moderator), Some(brand)) = (find("demo_moderator"), find("demo_brand")) else {
        return Ok(Vec::new());
    };
    let types = gv::active_types(conn)?;
    let mut recorded = 0;
    for (slug, code, what) in [
        (
            "mianma",
            "false_advertising",
            "商品详情称“100% 纯亚麻”，抽检成分为棉麻混纺（亚麻 55%）。",
        ),
        (
            "qinghe",
            "off_platform_trading",
            "客服在聊天中引导买家添加微信私下交易（订单咨询会话，已存档）。",
        ),
    ] {
        let shop: Option<i64> = shop_t::table
            .filter(shop_t::slug.eq(slug))
            .select(shop_t::id)
            .first(conn)
            .optional()?;
        let (Some(shop_id), Some(kind)) = (shop, types.iter().find(|t| t.code == code)) else {
            continue;
        };
        crate::db::write_tx(conn, |c| {
            gv::record_in(
                c,
                &gv::NewViolation {
                    shop_id,
                    kind,
                    product_id: None,
                    order_id: None,
                    description: what,
                    evidence: "",
                    source: "moderator",
                    actor: Some(moderator.id),
                },
                settings.tz,
                now,
            )
        })?;
        recorded += 1;
    }
    let serious: Option<i64> = crate::db::schema::violations::table
        .filter(crate::db::schema::violations::track.eq("serious"))
        .select(crate::db::schema::violations::id)
        .first(conn)
        .optional()?;
    if let Some(v) = serious {
        appeals::submit(
            conn,
            &brand,
            v,
            "该客服为新入职员工，已批评教育并调离岗位；店铺从未发生站外交易，附内部处理记录。",
            &[],
            now,
        )?;
    }
    Ok(vec![format!(
        "  governance {recorded} violations recorded by demo_moderator; 青禾 is restricted and has an appeal in /admin/appeals"
    )])
}

/// A few orders in different states, so order pages and the merchant overview look alive.
fn demo_orders(
    conn: &mut DbConn,
    users: &[User],
    now: chrono::NaiveDateTime,
) -> Result<(), AppError> {
    use crate::db::schema::skus;
    use crate::orders::service as orders;
    use diesel::prelude::*;
    let find = |h: &str| users.iter().find(|u| u.handle == h).map(as_session);
    let (Some(buyer), Some(buyer2), Some(merchant)) = (
        find("demo_buyer"),
        find("demo_buyer2"),
        find("demo_merchant"),
    ) else {
        return Ok(());
    };
    let some_skus: Vec<i64> = skus::table
        .order(skus::id)
        .select(skus::id)
        .limit(6)
        .load(conn)?;
    let address = |name: &str| orders::AddressForm {
        recipient: name.into(),
        phone: "13800138000".into(),
        province: "浙江省".into(),
        city: "杭州市".into(),
        district: "西湖区".into(),
        detail: "文三路 100 号 2 单元 301".into(),
        make_default: None,
    };
    // (buyer, SKUs, then: pay?, ship?, confirm?)
    let plan: [(&SessionUser, &[usize], bool, bool, bool); 4] = [
        (&buyer, &[0, 1], true, true, true),
        (&buyer, &[2], true, true, false),
        (&buyer, &[3], false, false, false),
        (&buyer2, &[0, 4], true, false, false),
    ];
    let mut addressed = Vec::new();
    for (i, (who, picks, pay, ship, confirm)) in plan.into_iter().enumerate() {
        if !addressed.contains(&who.id) {
            orders::add_address(conn, who, &address(&who.display_name), now)?;
            addressed.push(who.id);
        }
        let skus: Vec<i64> = picks
            .iter()
            .filter_map(|p| some_skus.get(*p).copied())
            .collect();
        let key = format!("demo-checkout-{i:04}-0000");
        let event = format!("demo-event-{i:04}");
        let checkout = buy(conn, who, &skus, &key, pay.then_some(event.as_str()), now)?;
        if !pay {
            continue;
        }
        for o in orders::checkout_orders(conn, who, checkout)? {
            if ship && o.order.shop_id == merchant_shop(conn, &merchant)? {
                let form = orders::ShipForm {
                    carrier: "sf".into(),
                    tracking_no: format!("SF20261130{i:04}"),
                };
                orders::ship(conn, &merchant, &o.order.order_no, &form, now)?;
                if confirm {
                    orders::confirm_receipt(conn, who, &o.order.order_no, now)?;
                }
            }
        }
    }
    Ok(())
}

/// How a demo shop treats its buyers: hours to ship and to deliver, the stars it earns (cycled)
/// and every how many orders a buyer complains (0: never).
struct Service {
    owner: &'static str,
    ship_h: i64,
    deliver_h: i64,
    stars: &'static [(i64, i64, i64)],
    complain_every: usize,
}

const HISTORY: &[Service] = &[
    Service {
        owner: "demo_merchant",
        ship_h: 3,
        deliver_h: 30,
        stars: &[(5, 5, 5), (5, 5, 4), (5, 4, 5), (4, 5, 5)],
        complain_every: 0,
    },
    Service {
        owner: "demo_brand",
        ship_h: 10,
        deliver_h: 50,
        stars: &[(5, 5, 4), (4, 4, 4), (5, 4, 4), (3, 4, 4)],
        complain_every: 0,
    },
    Service {
        owner: "demo_orchard",
        ship_h: 30,
        deliver_h: 60,
        stars: &[(4, 4, 3), (5, 4, 3), (2, 3, 3), (4, 5, 4)],
        complain_every: 12,
    },
    Service {
        owner: "demo_linen",
        ship_h: 44,
        deliver_h: 100,
        stars: &[(3, 3, 2), (2, 3, 2), (4, 3, 3), (1, 2, 2)],
        complain_every: 6,
    },
];

/// Ninety days of history through the real services, with backdated clocks: 40 completed
/// and rated orders per demo shop from 12 shoppers, complaints for the weaker shops ruled by
/// the moderator, then the nightly scoring of the last 30 days, so the storefronts show DSR
/// and experience scores and the score pages have trends.
fn demo_history(
    conn: &mut DbConn,
    settings: &Settings,
    users: &[User],
    now: chrono::NaiveDateTime,
) -> Result<Vec<String>, AppError> {
    use crate::db::schema::{shops as shop_t, skus};
    use crate::orders::complaints;
    use chrono::Duration;
    use diesel::prelude::*;
    let find = |h: &str| users.iter().find(|u| u.handle == h).map(as_session);
    let Some(mut moderator) = find("demo_moderator") else {
        return Ok(Vec::new());
    };
    moderator.roles = vec![Role::Moderator];
    // The shops have been open for four months.
    let opened = now - Duration::days(120);
    diesel::update(shop_t::table)
        .set(shop_t::created_at.eq(opened))
        .execute(conn)?;
    // Twelve shoppers with the demo password (its hash copied: seeding stays fast).
    let shoppers = shoppers(conn, moderator.id, "demo_shopper", "shopper", 12, opened)?;
    let tz = settings.tz;
    let mut placed = 0;
    for (k, plan) in HISTORY.iter().enumerate() {
        let Some(merchant) = find(plan.owner) else {
            continue;
        };
        let shop_id = merchant_shop(conn, &merchant)?;
        let sku_ids: Vec<i64> = skus::table
            .filter(skus::shop_id.eq(shop_id))
            .order(skus::id)
            .select(skus::id)
            .load(conn)?;
        for n in 0..40usize {
            let buyer = &shoppers[(n + k) % shoppers.len()];
            let Some(&sku) = sku_ids.get(n % sku_ids.len().max(1)) else {
                break;
            };
            // Spread over days 9…87 ago, at different hours: shipping, delivery, confirmation
            // and the rating (at most seven days later) are all in the past.
            let paid =
                now - Duration::days(9 + (n as i64 * 2) % 79) - Duration::hours(n as i64 % 9);
            let key = format!("demo-history-{k}-{n:04}-0000");
            let event = format!("demo-history-{k}-{n:04}");
            let plan_n = Rated {
                key,
                event,
                paid,
                ship_h: plan.ship_h + (n as i64 % 3),
                deliver_h: plan.deliver_h,
                stars: plan.stars[n % plan.stars.len()],
            };
            for (no, rated) in rated_order(conn, tz, buyer, &merchant, sku, &plan_n)? {
                if plan.complain_every > 0 && n % plan.complain_every == 1 {
                    let id = complaints::file(
                        conn,
                        buyer,
                        &no,
                        "late_shipping",
                        "发货太慢了，催了几次才发，客服也不回复。",
                        &[],
                        rated,
                    )?;
                    complaints::rule(
                        conn,
                        &moderator,
                        id,
                        n % 2 == 1,
                        "核实物流记录后裁定。",
                        rated + Duration::hours(30),
                    )?;
                }
                placed += 1;
            }
        }
    }
    // Score the last 30 days, oldest first (the lease rows show up under /admin/dsr).
    let today = crate::dsr::job::platform_day(tz, now);
    for back in (1..=30).rev() {
        let day = today - Duration::days(back);
        crate::dsr::job::run(conn, settings, day, "seed --demo", now)?;
    }
    Ok(vec![
        format!("  history    {placed} rated orders over 90 days from demo_shopper01…12 (same password), complaints for the weaker shops"),
        "  scores     the last 30 days scored: storefronts show DSR and experience scores, /merchant/dsr has trends".into(),
    ])
}

/// Buyers with the password of `like_user` (its hash copied: seeding stays fast), each with a
/// shipping address: handles `{handle}01…`, emails `{email}01@demo.haodian.cn…`.
fn shoppers(
    conn: &mut DbConn,
    like_user: i64,
    handle: &str,
    email: &str,
    count: usize,
    since: chrono::NaiveDateTime,
) -> Result<Vec<SessionUser>, AppError> {
    use crate::db::schema::users as users_t;
    use crate::orders::service as orders;
    use diesel::prelude::*;
    let hash: String = users_t::table
        .filter(users_t::id.eq(like_user))
        .select(users_t::password_hash)
        .first(conn)?;
    let mut out = Vec::new();
    for i in 1..=count {
        let handle = format!("{handle}{i:02}");
        diesel::insert_into(users_t::table)
            .values((
                users_t::email.eq(format!("{email}{i:02}@demo.haodian.cn")),
                users_t::handle.eq(&handle),
                users_t::display_name.eq(format!("买家{i:02}")),
                users_t::password_hash.eq(&hash),
                users_t::bio.eq(""),
                users_t::email_verified_at.eq(Some(since)),
                users_t::password_changed_at.eq(since),
                users_t::created_at.eq(since),
                users_t::updated_at.eq(since),
            ))
            .execute(conn)?;
        let u = service::find_by_handle(conn, &handle)?;
        orders::add_address(
            conn,
            &as_session(&u),
            &orders::AddressForm {
                recipient: u.display_name.clone(),
                phone: "13900139000".into(),
                province: "上海市".into(),
                city: "上海市".into(),
                district: "徐汇区".into(),
                detail: format!("漕溪北路 {i} 号"),
                make_default: None,
            },
            since,
        )?;
        out.push(as_session(&u));
    }
    Ok(out)
}

/// One backdated purchase through the real services, from payment to the rating.
struct Rated {
    key: String,
    event: String,
    paid: chrono::NaiveDateTime,
    ship_h: i64,
    deliver_h: i64,
    stars: (i64, i64, i64),
}

/// Buys one `sku`, ships, delivers, confirms and rates it as `plan` says; returns each
/// order's number and the time it was rated.
fn rated_order(
    conn: &mut DbConn,
    tz: chrono_tz::Tz,
    buyer: &SessionUser,
    merchant: &SessionUser,
    sku: i64,
    plan: &Rated,
) -> Result<Vec<(String, chrono::NaiveDateTime)>, AppError> {
    use crate::orders::service as orders;
    use chrono::Duration;
    let checkout = buy(conn, buyer, &[sku], &plan.key, Some(&plan.event), plan.paid)?;
    let mut out = Vec::new();
    for o in orders::checkout_orders(conn, buyer, checkout)? {
        let no = o.order.order_no.clone();
        let shipped = plan.paid + Duration::hours(plan.ship_h);
        let form = orders::ShipForm {
            carrier: "sf".into(),
            tracking_no: format!("SF{}{}", shipped.format("%Y%m%d"), o.order.id),
        };
        orders::ship(conn, merchant, &no, &form, shipped)?;
        let delivered = shipped + Duration::hours(plan.deliver_h);
        orders::mark_delivered(conn, &no, delivered)?;
        let done = delivered + Duration::hours(20);
        orders::confirm_receipt(conn, buyer, &no, done)?;
        let rated = done + Duration::hours(5);
        let (d, s, l) = plan.stars;
        let month = crate::dsr::job::platform_day(tz, rated)
            .format("%Y-%m")
            .to_string();
        let text = match d {
            5 => "很满意，和描述一致，会回购。",
            4 => "不错，包装完好。",
            3 => "一般，和图片有点差别。",
            _ => "不太满意，质量一般。",
        };
        let rating = crate::ratings::service::RatingForm {
            described: d,
            service: s,
            logistics: l,
            body: text.into(),
        };
        crate::ratings::service::rate(conn, buyer, &no, &rating, &[], rated, &month)?;
        out.push((no, rated));
    }
    Ok(out)
}

/// Puts the SKUs in the buyer's cart, checks out to their first address and, given a payment
/// event id, pays through the simulated provider; returns the checkout.
fn buy(
    conn: &mut DbConn,
    who: &SessionUser,
    skus: &[i64],
    key: &str,
    pay_event: Option<&str>,
    now: chrono::NaiveDateTime,
) -> Result<i64, AppError> {
    use crate::orders::service as orders;
    let owner = format!("u{}", who.id);
    for sku in skus {
        orders::cart_add(conn, &owner, *sku, 1, now)?;
    }
    let address_id = orders::addresses_of(conn, who.id)?.first().map(|a| a.id);
    let form = orders::CheckoutForm {
        key: key.to_string(),
        address_id,
        expected_total: None,
        note: String::new(),
    };
    let checkout = orders::checkout(conn, who, &form, now, 60 * 24)?;
    if let Some(event) = pay_event {
        let intent = orders::start_payment(conn, who, "sim", Some(checkout), None, now)?;
        let ev = orders::PaymentEvent {
            provider: "sim".into(),
            event_id: event.to_string(),
            intent,
            succeeded: true,
        };
        orders::apply_payment_event(conn, &ev, now)?;
    }
    Ok(checkout)
}

fn merchant_shop(conn: &mut DbConn, merchant: &SessionUser) -> Result<i64, AppError> {
    Ok(shops::shop_of_official(conn, merchant.id)?
        .map(|s| s.id)
        .unwrap_or(-1))
}

struct DemoProduct {
    title: &'static str,
    subtitle: &'static str,
    category: &'static str,
    description: &'static str,
    attributes: &'static str,
    variants: &'static str,
    /// Price and list price in yuan, and stock, per SKU (the last repeats).
    prices: &'static [(&'static str, &'static str, &'static str)],
    /// Base colour of the generated picture.
    rgb: [u8; 3],
}

const DEMO_PRODUCTS: &[(&str, &[DemoProduct])] = &[
    (
        "demo_merchant",
        &[
            DemoProduct {
                title: "武夷岩茶 大红袍 浓香型",
                subtitle: "正岩产区 传统炭焙",
                category: "food-tea",
                description:
                    "产自武夷山正岩产区，传统炭焙三次。\n干茶乌润，汤色橙黄明亮，岩韵明显。",
                attributes: "产地: 福建武夷山\n净含量: 见规格\n保质期: 36 个月",
                variants: "规格: 50g 品鉴装, 100g 罐装, 250g 礼盒",
                prices: &[("68", "88", "120"), ("128", "", "80"), ("298", "358", "30")],
                rgb: [150, 70, 40],
            },
            DemoProduct {
                title: "福鼎白茶 寿眉饼",
                subtitle: "2021 年春茶 压饼",
                category: "food-tea",
                description: "福鼎高山寿眉，紧压成饼，便于存放。\n煮饮、泡饮皆宜。",
                attributes: "产地: 福建福鼎\n年份: 2021",
                variants: "规格: 100g 小饼, 350g 大饼",
                prices: &[("59", "", "60"), ("169", "199", "25")],
                rgb: [200, 180, 120],
            },
            DemoProduct {
                title: "玫瑰花茶 平阴重瓣",
                subtitle: "低温烘干 花型完整",
                category: "food-tea",
                description: "山东平阴重瓣红玫瑰，低温烘干。",
                attributes: "产地: 山东平阴",
                variants: "",
                prices: &[("35", "45", "200")],
                rgb: [190, 60, 90],
            },
        ],
    ),
    (
        "demo_brand",
        &[
            DemoProduct {
                title: "青禾 亚麻宽松衬衫",
                subtitle: "天然亚麻 透气通勤",
                category: "apparel-women",
                description: "100% 亚麻面料，水洗柔软处理。\n宽松版型，通勤与周末都合适。",
                attributes: "面料: 亚麻 100%\n版型: 宽松",
                variants: "颜色: 米白, 雾蓝\n尺码: S, M, L",
                prices: &[("259", "329", "40")],
                rgb: [220, 214, 196],
            },
            DemoProduct {
                title: "青禾 羊毛混纺针织开衫",
                subtitle: "秋冬薄款 可叠穿",
                category: "apparel-women",
                description: "羊毛混纺纱线，细腻不扎。",
                attributes: "面料: 羊毛 30% 腈纶 70%",
                variants: "颜色: 燕麦, 墨绿\n尺码: M, L",
                prices: &[("329", "", "25")],
                rgb: [90, 110, 80],
            },
            DemoProduct {
                title: "青禾 高腰垂感阔腿裤",
                subtitle: "垂坠面料 显瘦",
                category: "apparel-women",
                description: "高腰设计，垂感面料，四季可穿。",
                attributes: "面料: 聚酯纤维 90% 氨纶 10%",
                variants: "尺码: S, M, L, XL",
                prices: &[("199", "239", "50")],
                rgb: [60, 60, 70],
            },
        ],
    ),
    (
        "demo_orchard",
        &[DemoProduct {
            title: "昭通冰糖心苹果 5 斤装",
            subtitle: "高原红富士 现摘现发",
            category: "food-fresh",
            description: "海拔 2000 米果园，昼夜温差大，果心糖分足。",
            attributes: "产地: 云南昭通\n净含量: 2.5kg",
            variants: "果径: 75-80mm, 80-85mm",
            prices: &[("39.9", "59", "300"), ("49.9", "69", "300")],
            rgb: [200, 40, 40],
        }],
    ),
    (
        "demo_linen",
        &[DemoProduct {
            title: "棉麻 休闲短裤",
            subtitle: "夏季 松紧腰",
            category: "apparel-men",
            description: "棉麻混纺，松紧腰设计。",
            attributes: "面料: 棉 55% 麻 45%",
            variants: "尺码: M, L, XL",
            prices: &[("69", "", "300")],
            rgb: [170, 150, 110],
        }],
    ),
];

/// A square picture for a demo product: a soft gradient of its colour.
fn demo_picture(rgb: [u8; 3], variant: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(480, 480, |x, y| {
        let t = (x + y) as f32 / 960.0;
        let shade =
            |c: u8| ((c as f32) * (0.75 + 0.35 * t) + variant as f32 * 12.0).min(255.0) as u8;
        image::Rgb([shade(rgb[0]), shade(rgb[1]), shade(rgb[2])])
    });
    let mut out = Vec::new();
    let _ = image::DynamicImage::ImageRgb8(img)
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png);
    out
}

fn demo_product(
    conn: &mut DbConn,
    owner: &SessionUser,
    categories: &[crate::shops::model::Category],
    p: &DemoProduct,
    n: usize,
    now: chrono::NaiveDateTime,
) -> Result<(), AppError> {
    use crate::catalog::service as catalog;
    let fail = |e: AppError| AppError::Internal(format!("demo product {}: {e}", p.title));
    let category_id = categories
        .iter()
        .find(|c| c.slug == p.category)
        .map(|c| c.id.to_string())
        .unwrap_or_default();
    let form = catalog::ProductForm {
        title: p.title.into(),
        subtitle: p.subtitle.into(),
        description: p.description.into(),
        attributes: p.attributes.into(),
        category_id,
    };
    let id = catalog::create_product(conn, owner, &form, now).map_err(fail)?;
    if !p.variants.is_empty() {
        catalog::set_variants(conn, owner, id, p.variants, now).map_err(fail)?;
    }
    let rows: Vec<catalog::SkuInput> = catalog::skus_of(conn, id)?
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (price, list, stock) = p.prices[i.min(p.prices.len() - 1)];
            catalog::SkuInput {
                id: s.id,
                code: format!("D{}-{}-{}", owner.id, n + 1, i + 1),
                price: price.into(),
                list_price: list.into(),
                stock: stock.into(),
            }
        })
        .collect();
    catalog::save_skus(conn, owner, id, &rows, now).map_err(fail)?;
    let pictures = vec![demo_picture(p.rgb, 0), demo_picture(p.rgb, 3)];
    catalog::add_images(conn, owner, id, &pictures, now).map_err(fail)?;
    catalog::submit(conn, owner, id, now).map_err(fail)?;
    Ok(())
}

/// Seeds demo data only into an empty database (for `serve --demo`).
pub fn demo_if_empty(
    conn: &mut DbConn,
    settings: &Settings,
) -> Result<Option<Vec<String>>, AppError> {
    if service::count_users(conn)? > 0 {
        return Ok(None);
    }
    demo(conn, settings).map(Some)
}

/// Benchmark data: a shop `bench-shop` with 60 listed products (one SKU each, but the first
/// has 10 SKUs and 20 ratings from 20 buyers) and yesterday's scores; returns the lines to
/// print. Needs an otherwise empty or demo database.
pub fn bench(conn: &mut DbConn, settings: &Settings) -> Result<Vec<String>, AppError> {
    use crate::catalog::service as catalog;
    let now = chrono::Utc::now().naive_utc();
    let owner = service::create_user(
        conn,
        "bench@demo.haodian.cn",
        "bench_owner",
        "压测店主",
        DEMO_PASSWORD,
        Role::Merchant,
        None,
    )
    .map_err(|e| AppError::Internal(format!("bench data exists already or is invalid: {e}")))?;
    let me = as_session(&owner);
    let categories = shops::categories(conn)?;
    let apparel = categories
        .iter()
        .find(|c| c.slug == "apparel")
        .map(|c| c.id.to_string())
        .unwrap_or_default();
    let form = shops::OpenShopForm {
        name: "压测旗舰店".into(),
        slug: "bench-shop".into(),
        description: "基准测试用店铺：60 件在售商品。".into(),
        main_category_id: apparel.clone(),
        entity_type: "individual".into(),
        qualifications: Vec::new(),
    };
    shops::open_shop(conn, &me, &form, now)?;
    let mut ids = Vec::new();
    for i in 0..60 {
        let f = catalog::ProductForm {
            title: format!("压测商品 第{:02}号 纯棉T恤", i + 1),
            subtitle: "基准测试".into(),
            description: "用于测量店铺页与商品页的吞吐。".into(),
            attributes: "面料: 棉".into(),
            category_id: apparel.clone(),
        };
        let id = catalog::create_product(conn, &me, &f, now)?;
        if i == 0 {
            catalog::set_variants(conn, &me, id, "颜色: 白, 黑\n尺码: XS, S, M, L, XL", now)?;
        }
        let rows: Vec<catalog::SkuInput> = catalog::skus_of(conn, id)?
            .iter()
            .enumerate()
            .map(|(j, s)| catalog::SkuInput {
                id: s.id,
                code: format!("B{}-{}", i + 1, j + 1),
                price: format!("{}.90", 49 + i + j),
                list_price: String::new(),
                stock: "100".into(),
            })
            .collect();
        catalog::save_skus(conn, &me, id, &rows, now)?;
        catalog::submit(conn, &me, id, now)?;
        ids.push(id);
    }
    // The shop opened two months ago; twenty buyers bought the 10-SKU product over the last
    // month and rated it.
    {
        use crate::db::schema::shops as shop_t;
        use diesel::prelude::*;
        diesel::update(shop_t::table.filter(shop_t::slug.eq("bench-shop")))
            .set(shop_t::created_at.eq(now - chrono::Duration::days(60)))
            .execute(conn)?;
    }
    let buyers = shoppers(
        conn,
        owner.id,
        "bench_buyer",
        "bench-buyer",
        20,
        now - chrono::Duration::days(60),
    )?;
    let skus: Vec<i64> = catalog::skus_of(conn, ids[0])?
        .iter()
        .map(|s| s.id)
        .collect();
    const STARS: [(i64, i64, i64); 4] = [(5, 5, 5), (5, 4, 5), (4, 5, 4), (3, 4, 4)];
    for (n, buyer) in buyers.iter().enumerate() {
        let plan = Rated {
            key: format!("bench-{n:04}-0000-0000"),
            event: format!("bench-{n:04}"),
            paid: now - chrono::Duration::days(30 - n as i64),
            ship_h: 6,
            deliver_h: 40,
            stars: STARS[n % STARS.len()],
        };
        rated_order(conn, settings.tz, buyer, &me, skus[n % skus.len()], &plan)?;
    }
    let yesterday = crate::dsr::job::platform_day(settings.tz, now) - chrono::Duration::days(1);
    crate::dsr::job::run(conn, settings, yesterday, "seed --bench", now)?;
    refresh_statistics(conn)?;
    Ok(vec![
        "bench data: /shops/bench-shop (60 listed products)".to_string(),
        format!("bench data: /products/{} (10 SKUs, 20 ratings)", ids[0]),
    ])
}

/// After a bulk load PostgreSQL's planner statistics are far behind (autovacuum catches up
/// later, and never on a table of a few dozen rows: bench data's ratings kept default guesses,
/// which planned the product page's ratings as sorts and hash joins, 2× its cost). Refresh them
/// so queries are planned on real numbers. (SQLite keeps no statistics unless asked, and
/// haodian's queries are planned without them.)
fn refresh_statistics(conn: &mut DbConn) -> Result<(), AppError> {
    if let DbConn::Postgres(c) = conn {
        diesel::connection::SimpleConnection::batch_execute(c, "ANALYZE")?;
    }
    Ok(())
}

const ADJECTIVES: &[&str] = &[
    "纯棉", "真丝", "亚麻", "羊毛", "加厚", "轻薄", "复古", "简约", "宽松", "修身", "oversize",
    "basic",
];
const NOUNS: &[&str] = &[
    "T恤",
    "衬衫",
    "连衣裙",
    "卫衣",
    "外套",
    "牛仔裤",
    "半身裙",
    "针织衫",
    "风衣",
    "羽绒服",
    "polo",
    "hoodie",
];

/// Scale data for benchmarks: `shops` shops (each bound to its own account), 50 listed
/// products per shop with 10 SKUs each (so 2,000 shops are 1,000,000 SKUs), indexed for
/// search. Written in batches straight to the tables, with the same invariants as the
/// services keep; `progress` is told after every shop batch.
pub fn scale(
    conn: &mut DbConn,
    shops: usize,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<String>, AppError> {
    use crate::db::schema::{products, search_grams, shops as shop_t, skus, users};
    use diesel::prelude::*;
    const PRODUCTS: usize = 50;
    const SKUS: usize = 10;
    let now = chrono::Utc::now().naive_utc();
    let hash = crate::accounts::password::hash(DEMO_PASSWORD)?;
    let categories = shops::categories(conn)?;
    let leafs: Vec<i64> = categories
        .iter()
        .filter(|c| c.parent_id.is_some() && c.required_qualifications.is_empty())
        .map(|c| c.id)
        .collect();
    let start: i64 = users::table.count().get_result(conn)?;
    let batch = 20;
    for first in (0..shops).step_by(batch) {
        let last = (first + batch).min(shops);
        crate::db::write_tx(conn, |c| {
            let tag = |i: usize| format!("{}_{i}", start);
            let new_users: Vec<_> = (first..last)
                .map(|i| {
                    (
                        users::email.eq(format!("scale{}@bench.haodian.cn", tag(i))),
                        users::handle.eq(format!("scale_{}", tag(i))),
                        users::display_name.eq(format!("压测店主{i}")),
                        users::password_hash.eq(hash.clone()),
                        users::bio.eq(""),
                        users::email_verified_at.eq(Some(now)),
                        users::password_changed_at.eq(now),
                        users::created_at.eq(now),
                        users::updated_at.eq(now),
                    )
                })
                .collect();
            crate::per_backend!(c, |c| diesel::insert_into(users::table)
                .values(&new_users)
                .execute(c))?;
            let handles: Vec<String> = (first..last).map(|i| format!("scale_{}", tag(i))).collect();
            let owners: Vec<(i64, String)> = users::table
                .filter(users::handle.eq_any(&handles))
                .order(users::id)
                .select((users::id, users::handle))
                .load(c)?;
            let new_shops: Vec<_> = owners
                .iter()
                .map(|(uid, handle)| {
                    (
                        shop_t::slug.eq(handle.replace('_', "-")),
                        shop_t::name.eq(format!("{handle} 的店")),
                        shop_t::description.eq(""),
                        shop_t::main_category_id.eq(leafs[(*uid as usize) % leafs.len()]),
                        shop_t::entity_type.eq("individual"),
                        shop_t::official_user_id.eq(*uid),
                        shop_t::status.eq("active"),
                        shop_t::created_at.eq(now),
                        shop_t::updated_at.eq(now),
                    )
                })
                .collect();
            crate::per_backend!(c, |c| diesel::insert_into(shop_t::table)
                .values(&new_shops)
                .execute(c))?;
            let owner_ids: Vec<i64> = owners.iter().map(|(id, _)| *id).collect();
            let shop_ids: Vec<i64> = shop_t::table
                .filter(shop_t::official_user_id.eq_any(&owner_ids))
                .order(shop_t::id)
                .select(shop_t::id)
                .load(c)?;
            for (k, shop_id) in shop_ids.iter().enumerate() {
                let n = first + k;
                let new_products: Vec<_> = (0..PRODUCTS)
                    .map(|p| {
                        let seed = n * PRODUCTS + p;
                        let title = format!(
                            "{}{} {}款 {}",
                            ADJECTIVES[seed % ADJECTIVES.len()],
                            NOUNS[(seed / 7) % NOUNS.len()],
                            seed % 97,
                            seed
                        );
                        let price = 1900 + ((seed * 37) % 50_000) as i64;
                        (
                            products::shop_id.eq(*shop_id),
                            products::category_id.eq(leafs[seed % leafs.len()]),
                            products::title.eq(title),
                            products::subtitle.eq(""),
                            products::status.eq("listed"),
                            products::price_min.eq(Some(price)),
                            products::price_max.eq(Some(price + 900)),
                            products::sales_count.eq(((seed * 131) % 5000) as i64),
                            products::created_at.eq(now),
                            products::updated_at.eq(now),
                            products::listed_at.eq(Some(now)),
                        )
                    })
                    .collect();
                crate::per_backend!(c, |c| diesel::insert_into(products::table)
                    .values(&new_products)
                    .execute(c))?;
                let made: Vec<(i64, String, Option<i64>)> = products::table
                    .filter(products::shop_id.eq(shop_id))
                    .order(products::id)
                    .select((products::id, products::title, products::price_min))
                    .load(c)?;
                let mut new_skus = Vec::with_capacity(PRODUCTS * SKUS);
                let mut grams = Vec::new();
                for (pid, title, price) in &made {
                    for s in 0..SKUS {
                        new_skus.push((
                            skus::product_id.eq(*pid),
                            skus::shop_id.eq(*shop_id),
                            skus::code.eq(format!("S{pid}-{s}")),
                            skus::attrs.eq(format!("规格:{}", s + 1)),
                            skus::price_fen.eq(price.unwrap_or(100) + (s as i64) * 100),
                            skus::stock.eq(100i64),
                            skus::position.eq(s as i64),
                            skus::created_at.eq(now),
                            skus::updated_at.eq(now),
                        ));
                    }
                    for g in crate::catalog::search::grams(title) {
                        grams.push((search_grams::gram.eq(g), search_grams::product_id.eq(*pid)));
                    }
                }
                for chunk in new_skus.chunks(1000) {
                    crate::per_backend!(c, |c| diesel::insert_into(skus::table)
                        .values(chunk)
                        .execute(c))?;
                }
                for chunk in grams.chunks(1000) {
                    crate::per_backend!(c, |c| diesel::insert_into(search_grams::table)
                        .values(chunk)
                        .execute(c))?;
                }
            }
            Ok::<_, AppError>(())
        })?;
        progress(last);
    }
    refresh_statistics(conn)?;
    Ok(vec![format!(
        "scale data: {shops} shops, {} listed products, {} SKUs",
        shops * PRODUCTS,
        shops * PRODUCTS * SKUS
    )])
}
