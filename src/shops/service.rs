//! 号店一体 use cases: opening a shop bound to its official account, shop membership and
//! roles, staff, authorized accounts, follows, profiles and storefronts. Every merchant action
//! finds the shop from the caller's own membership, never from an id the client sent, so a
//! merchant can not reach another shop's data.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use super::model::{Category, EntityType, QualificationKind, Shop, ShopRole};
use crate::accounts::{service as accounts, Role, SessionUser, User};
use crate::db::schema::{
    categories, follows, products, shop_authorizations as sa, shop_qualifications as sq,
    shop_staff, shops, users,
};
use crate::db::{is_unique_violation, write_tx, DbConn};
use crate::error::{AppError, FieldErrors};

/// Limits for authorized accounts (configurable).
#[derive(Debug, Clone, Copy)]
pub struct AuthorizationRules {
    pub max_accounts: i64,
    pub min_followers: i64,
    pub min_days_before_revoke: i64,
}

pub const MAX_STAFF: i64 = 50;
pub const MAX_DOCUMENT_BYTES: usize = 5 * 1024 * 1024;

const RESERVED_SLUGS: &[&str] = &[
    "new", "open", "admin", "search", "official", "haodian", "static", "api",
];

// ---------- categories ----------

pub fn categories(conn: &mut DbConn) -> Result<Vec<Category>, AppError> {
    Ok(categories::table
        .order((categories::sort_order, categories::id))
        .select(Category::as_select())
        .load(conn)?)
}

pub fn top_categories(conn: &mut DbConn) -> Result<Vec<Category>, AppError> {
    Ok(categories(conn)?
        .into_iter()
        .filter(|c| c.parent_id.is_none())
        .collect())
}

pub fn category(conn: &mut DbConn, id: i64) -> Result<Category, AppError> {
    categories::table
        .find(id)
        .select(Category::as_select())
        .first(conn)
        .optional()?
        .ok_or(AppError::NotFound)
}

// ---------- opening a shop ----------

/// The open-a-shop form. Qualification numbers are optional fields; which are required depends
/// on the entity type and the main category.
#[derive(Debug, Default, Clone)]
pub struct OpenShopForm {
    pub name: String,
    pub slug: String,
    pub description: String,
    pub main_category_id: String,
    pub entity_type: String,
    /// (kind, number, uploaded document)
    pub qualifications: Vec<(QualificationKind, String, Option<Vec<u8>>)>,
}

impl OpenShopForm {
    pub fn number(&self, kind: &QualificationKind) -> &str {
        self.qualifications
            .iter()
            .find(|(k, _, _)| k == kind)
            .map(|(_, n, _)| n.as_str())
            .unwrap_or("")
    }
}

/// Checks a shop name: 2–30 characters, no control characters.
pub fn check_shop_name(s: &str) -> Result<String, &'static str> {
    let s = s.trim();
    let n = s.chars().count();
    if n == 0 {
        Err("required")
    } else if !(2..=30).contains(&n) {
        Err("shop_name_length")
    } else if s.chars().any(char::is_control) {
        Err("no_control_chars")
    } else {
        Ok(s.to_string())
    }
}

/// Checks a slug: 3–30 of a–z, 0–9 and `-`, not starting or ending with `-`, not reserved.
pub fn check_slug(s: &str) -> Result<String, &'static str> {
    let s = s.trim().to_ascii_lowercase();
    if s.is_empty() {
        return Err("required");
    }
    if !(3..=30).contains(&s.len())
        || !s
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        || s.starts_with('-')
        || s.ends_with('-')
    {
        return Err("slug_format");
    }
    if RESERVED_SLUGS.contains(&s.as_str()) {
        return Err("slug_reserved");
    }
    Ok(s)
}

/// The type of an uploaded document, by content: an image or a PDF.
pub fn sniff_document(bytes: &[u8]) -> Option<&'static str> {
    accounts::sniff_image(bytes)
        .or_else(|| bytes.starts_with(b"%PDF-").then_some("application/pdf"))
}

/// The shop an account is the official account of, if any.
pub fn shop_of_official(conn: &mut DbConn, user_id: i64) -> Result<Option<Shop>, AppError> {
    Ok(shops::table
        .filter(shops::official_user_id.eq(user_id))
        .select(Shop::as_select())
        .first(conn)
        .optional()?)
}

/// Opens a shop with the caller's account as its official account (one account ↔ one shop,
/// enforced by a unique constraint, so concurrent requests can not bind twice) and makes the
/// account a merchant.
pub fn open_shop(
    conn: &mut DbConn,
    me: &SessionUser,
    form: &OpenShopForm,
    now: NaiveDateTime,
) -> Result<Shop, AppError> {
    let mut errors = FieldErrors::new();
    if !me.email_verified {
        errors.add("form", "shop_email_unverified");
    }
    let name = check_shop_name(&form.name)
        .map_err(|c| errors.add("name", c))
        .ok();
    let slug = check_slug(&form.slug)
        .map_err(|c| errors.add("slug", c))
        .ok();
    let description = form.description.trim().to_string();
    if description.chars().count() > 500 {
        errors.add("description", "description_length");
    }
    let entity = EntityType::parse(&form.entity_type);
    if entity.is_none() {
        errors.add("entity_type", "choose_one");
    }
    let category = match form.main_category_id.trim().parse::<i64>() {
        Ok(id) => category(conn, id).ok().filter(|c| c.parent_id.is_none()),
        Err(_) => None,
    };
    if category.is_none() {
        errors.add("main_category_id", "choose_one");
    }
    // What this shop must document.
    let mut required: Vec<QualificationKind> = category
        .as_ref()
        .map(Category::required)
        .unwrap_or_default();
    match entity {
        Some(EntityType::Enterprise) => required.push(QualificationKind::BusinessLicense),
        Some(EntityType::BrandFlagship) => {
            required.push(QualificationKind::BusinessLicense);
            required.push(QualificationKind::BrandAuthorization);
        }
        _ => {}
    }
    let mut quals = Vec::new();
    for (kind, number, doc) in &form.qualifications {
        let field = kind.as_str();
        let number = number.trim();
        let needed = required.contains(kind);
        if number.is_empty() {
            if needed {
                errors.add(field, "qualification_required");
            }
            continue;
        }
        if !kind.number_ok(number) {
            errors.add(field, &format!("{field}_format"));
            continue;
        }
        let doc_type = match doc.as_deref().filter(|d| !d.is_empty()) {
            None if needed => {
                errors.add(field, "document_required");
                continue;
            }
            None => None,
            Some(d) if d.len() > MAX_DOCUMENT_BYTES => {
                errors.add(field, "document_too_large");
                continue;
            }
            Some(d) => match sniff_document(d) {
                Some(t) => Some((t, d)),
                None => {
                    errors.add(field, "document_type");
                    continue;
                }
            },
        };
        quals.push((*kind, number.to_string(), doc_type));
    }
    for kind in &required {
        if !form.qualifications.iter().any(|(k, _, _)| k == kind) {
            errors.add(kind.as_str(), "qualification_required");
        }
    }
    let (Some(name), Some(slug), Some(entity), Some(category)) = (name, slug, entity, category)
    else {
        return Err(AppError::Invalid(errors));
    };
    errors.into_result()?;
    let result = write_tx(conn, |c| {
        if shop_of_official(c, me.id)?.is_some() {
            return Err(AppError::Conflict("shop.already_bound"));
        }
        let authorized: i64 = sa::table
            .filter(sa::user_id.eq(me.id))
            .filter(sa::revoked_at.is_null())
            .count()
            .get_result(c)?;
        if authorized > 0 {
            return Err(AppError::Conflict("shop.authorized_elsewhere"));
        }
        let taken: i64 = shops::table
            .filter(shops::slug.eq(&slug))
            .count()
            .get_result(c)?;
        if taken > 0 {
            return Err(AppError::field("slug", "slug_taken"));
        }
        let id: i64 = diesel::insert_into(shops::table)
            .values((
                shops::slug.eq(&slug),
                shops::name.eq(&name),
                shops::description.eq(&description),
                shops::main_category_id.eq(category.id),
                shops::entity_type.eq(entity.as_str()),
                shops::official_user_id.eq(me.id),
                shops::status.eq("active"),
                shops::created_at.eq(now),
                shops::updated_at.eq(now),
            ))
            .returning(shops::id)
            .get_result(c)?;
        for (kind, number, doc) in &quals {
            let doc_id = match doc {
                Some((t, bytes)) => Some(accounts::store_private_media(c, me.id, t, bytes, now)?),
                None => None,
            };
            diesel::insert_into(sq::table)
                .values((
                    sq::shop_id.eq(id),
                    sq::kind.eq(kind.as_str()),
                    sq::number.eq(number),
                    sq::document_media_id.eq(doc_id),
                    sq::created_at.eq(now),
                ))
                .execute(c)?;
        }
        accounts::ensure_role(c, me.id, Role::Merchant, now)?;
        accounts::audit(
            c,
            Some(me.id),
            "shop.open",
            "shop",
            Some(id),
            &format!("slug={slug}"),
        )?;
        shops::table
            .find(id)
            .select(Shop::as_select())
            .first(c)
            .map_err(AppError::from)
    });
    // A concurrent request for the same account or slug lost the race on a unique constraint.
    match result {
        Err(AppError::Db(e)) if is_unique_violation(&e) => {
            if shop_of_official(conn, me.id)?.is_some() {
                Err(AppError::Conflict("shop.already_bound"))
            } else {
                Err(AppError::field("slug", "slug_taken"))
            }
        }
        other => other,
    }
}

// ---------- membership ----------

/// A member's shop and role in it.
#[derive(Debug, Clone)]
pub struct Membership {
    pub shop: Shop,
    pub role: ShopRole,
}

/// The shop the user works in: their own (as official account), else the first shop that has
/// them as staff.
pub fn membership(conn: &mut DbConn, user_id: i64) -> Result<Option<Membership>, AppError> {
    if let Some(shop) = shop_of_official(conn, user_id)? {
        return Ok(Some(Membership {
            shop,
            role: ShopRole::Owner,
        }));
    }
    let staff: Option<(Shop, String)> = shop_staff::table
        .inner_join(shops::table)
        .filter(shop_staff::user_id.eq(user_id))
        .order(shops::id)
        .select((Shop::as_select(), shop_staff::role))
        .first(conn)
        .optional()?;
    Ok(staff.and_then(|(shop, role)| {
        ShopRole::parse_staff(&role).map(|role| Membership { shop, role })
    }))
}

/// The caller's shop when their role there allows `needed`; 403 otherwise.
pub fn require_shop_role(
    conn: &mut DbConn,
    user: &SessionUser,
    needed: ShopRole,
) -> Result<Membership, AppError> {
    match membership(conn, user.id)? {
        Some(m) if m.role.allows(needed) => Ok(m),
        Some(_) => Err(AppError::Forbidden("shop.role_forbidden")),
        None => Err(AppError::Forbidden("shop.no_shop")),
    }
}

// ---------- shop settings ----------

pub fn update_shop(
    conn: &mut DbConn,
    me: &SessionUser,
    name: &str,
    description: &str,
    logo: Option<&[u8]>,
    now: NaiveDateTime,
) -> Result<(), AppError> {
    let m = require_shop_role(conn, me, ShopRole::Owner)?;
    let mut errors = FieldErrors::new();
    let name = check_shop_name(name)
        .map_err(|c| errors.add("name", c))
        .ok();
    let description = description.trim().to_string();
    if description.chars().count() > 500 {
        errors.add("description", "description_length");
    }
    let logo_type = match logo.filter(|l| !l.is_empty()) {
        None => None,
        Some(l) if l.len() > 2 * 1024 * 1024 => {
            errors.add("logo", "avatar_too_large");
            None
        }
        Some(l) => match accounts::sniff_image(l) {
            Some(t) => Some((t, l)),
            None => {
                errors.add("logo", "avatar_type");
                None
            }
        },
    };
    errors.into_result()?;
    let name = name.unwrap_or_default();
    write_tx(conn, |c| {
        if let Some((t, bytes)) = logo_type {
            let id = accounts::store_media(c, me.id, t, bytes, now)?;
            diesel::update(shops::table.find(m.shop.id))
                .set(shops::logo_media_id.eq(Some(id)))
                .execute(c)?;
        }
        diesel::update(shops::table.find(m.shop.id))
            .set((
                shops::name.eq(&name),
                shops::description.eq(&description),
                shops::updated_at.eq(now),
            ))
            .execute(c)?;
        Ok(())
    })
}

// ---------- staff ----------

#[derive(Debug, Clone)]
pub struct StaffMember {
    pub user_id: i64,
    pub handle: String,
    pub display_name: String,
    pub role: String,
    pub added_at: NaiveDateTime,
}

pub fn list_staff(
    conn: &mut DbConn,
    me: &SessionUser,
) -> Result<(Membership, Vec<StaffMember>), AppError> {
    let m = require_shop_role(conn, me, ShopRole::Owner)?;
    let rows: Vec<(i64, String, String, String, NaiveDateTime)> = shop_staff::table
        .inner_join(users::table)
        .filter(shop_staff::shop_id.eq(m.shop.id))
        .order(shop_staff::added_at)
        .select((
            users::id,
            users::handle,
            users::display_name,
            shop_staff::role,
            shop_staff::added_at,
        ))
        .load(conn)?;
    let staff = rows
        .into_iter()
        .map(
            |(user_id, handle, display_name, role, added_at)| StaffMember {
                user_id,
                handle,
                display_name,
                role,
                added_at,
            },
        )
        .collect();
    Ok((m, staff))
}

pub fn add_staff(
    conn: &mut DbConn,
    me: &SessionUser,
    handle: &str,
    role: &str,
    now: NaiveDateTime,
) -> Result<(), AppError> {
    let m = require_shop_role(conn, me, ShopRole::Owner)?;
    let role = ShopRole::parse_staff(role).ok_or_else(|| AppError::field("role", "choose_one"))?;
    let user = accounts::find_by_handle(conn, handle.trim().trim_start_matches('@'))
        .map_err(|_| AppError::field("handle", "user_unknown"))?;
    if user.id == me.id {
        return Err(AppError::field("handle", "staff_self"));
    }
    write_tx(conn, |c| {
        let count: i64 = shop_staff::table
            .filter(shop_staff::shop_id.eq(m.shop.id))
            .count()
            .get_result(c)?;
        if count >= MAX_STAFF {
            return Err(AppError::Conflict("staff.full"));
        }
        let inserted = diesel::insert_into(shop_staff::table)
            .values((
                shop_staff::shop_id.eq(m.shop.id),
                shop_staff::user_id.eq(user.id),
                shop_staff::role.eq(role.as_str()),
                shop_staff::added_by.eq(Some(me.id)),
                shop_staff::added_at.eq(now),
            ))
            .execute(c);
        match inserted {
            Err(e) if is_unique_violation(&e) => {
                return Err(AppError::field("handle", "staff_exists"))
            }
            other => other?,
        };
        accounts::audit(
            c,
            Some(me.id),
            "shop.staff_add",
            "user",
            Some(user.id),
            &format!("shop={} role={}", m.shop.id, role.as_str()),
        )
    })
}

pub fn remove_staff(conn: &mut DbConn, me: &SessionUser, user_id: i64) -> Result<(), AppError> {
    let m = require_shop_role(conn, me, ShopRole::Owner)?;
    write_tx(conn, |c| {
        let n = diesel::delete(
            shop_staff::table
                .filter(shop_staff::shop_id.eq(m.shop.id))
                .filter(shop_staff::user_id.eq(user_id)),
        )
        .execute(c)?;
        if n == 0 {
            return Err(AppError::NotFound);
        }
        accounts::audit(
            c,
            Some(me.id),
            "shop.staff_remove",
            "user",
            Some(user_id),
            &format!("shop={}", m.shop.id),
        )
    })
}

// ---------- follows ----------

pub fn follow(
    conn: &mut DbConn,
    me: &SessionUser,
    handle: &str,
    now: NaiveDateTime,
) -> Result<(), AppError> {
    let target = accounts::find_by_handle(conn, handle)?;
    if target.id == me.id {
        return Err(AppError::Conflict("follow.self"));
    }
    write_tx(conn, |c| {
        crate::per_backend!(c, |c| diesel::insert_into(follows::table)
            .values((
                follows::follower_id.eq(me.id),
                follows::followee_id.eq(target.id),
                follows::created_at.eq(now)
            ))
            .on_conflict_do_nothing()
            .execute(c))?;
        Ok(())
    })
}

pub fn unfollow(conn: &mut DbConn, me: &SessionUser, handle: &str) -> Result<(), AppError> {
    let target = accounts::find_by_handle(conn, handle)?;
    write_tx(conn, |c| {
        diesel::delete(
            follows::table
                .filter(follows::follower_id.eq(me.id))
                .filter(follows::followee_id.eq(target.id)),
        )
        .execute(c)?;
        Ok(())
    })
}

// ---------- authorized accounts ----------

#[derive(Debug, Clone)]
pub struct AuthorizedAccount {
    pub id: i64,
    pub handle: String,
    pub display_name: String,
    pub followers: i64,
    pub authorized_at: NaiveDateTime,
    /// From when it may be revoked.
    pub revocable_from: NaiveDateTime,
}

pub fn list_authorizations(
    conn: &mut DbConn,
    me: &SessionUser,
    rules: AuthorizationRules,
) -> Result<(Membership, Vec<AuthorizedAccount>), AppError> {
    let m = require_shop_role(conn, me, ShopRole::Owner)?;
    let rows: Vec<(i64, String, String, i64, NaiveDateTime)> = sa::table
        .inner_join(users::table)
        .filter(sa::shop_id.eq(m.shop.id))
        .filter(sa::revoked_at.is_null())
        .order(sa::authorized_at)
        .select((
            sa::id,
            users::handle,
            users::display_name,
            users::followers_count,
            sa::authorized_at,
        ))
        .load(conn)?;
    let out = rows
        .into_iter()
        .map(
            |(id, handle, display_name, followers, authorized_at)| AuthorizedAccount {
                id,
                handle,
                display_name,
                followers,
                authorized_at,
                revocable_from: authorized_at + Duration::days(rules.min_days_before_revoke),
            },
        )
        .collect();
    Ok((m, out))
}

/// Authorizes another account to sell for the caller's shop.
pub fn authorize_account(
    conn: &mut DbConn,
    me: &SessionUser,
    handle: &str,
    rules: AuthorizationRules,
    now: NaiveDateTime,
) -> Result<(), AppError> {
    let m = require_shop_role(conn, me, ShopRole::Owner)?;
    let user: User = accounts::find_by_handle(conn, handle.trim().trim_start_matches('@'))
        .map_err(|_| AppError::field("handle", "user_unknown"))?;
    if user.id == me.id || shop_of_official(conn, user.id)?.is_some() {
        return Err(AppError::field("handle", "auth_is_official"));
    }
    if user.followers_count < rules.min_followers {
        return Err(AppError::field("handle", "auth_followers"));
    }
    // The shop's experience score must meet the rules' bar (a shop without enough data for a
    // score yet is not held back).
    if let Some(score) = crate::dsr::score::current_score(conn, m.shop.id)? {
        if score < crate::dsr::score::authorize_min_score(conn)? {
            return Err(AppError::Conflict("auth.low_score"));
        }
    }
    write_tx(conn, |c| {
        // Touch the shop row first: concurrent authorizations of one shop queue here (on
        // PostgreSQL the row lock, on SQLite the write lock), so the count below is exact.
        diesel::update(shops::table.find(m.shop.id))
            .set(shops::updated_at.eq(now))
            .execute(c)?;
        let live: i64 = sa::table
            .filter(sa::shop_id.eq(m.shop.id))
            .filter(sa::revoked_at.is_null())
            .count()
            .get_result(c)?;
        if live >= rules.max_accounts {
            return Err(AppError::Conflict("auth.full"));
        }
        let inserted = diesel::insert_into(sa::table)
            .values((
                sa::shop_id.eq(m.shop.id),
                sa::user_id.eq(user.id),
                sa::authorized_at.eq(now),
            ))
            .execute(c);
        match inserted {
            Err(e) if is_unique_violation(&e) => {
                return Err(AppError::field("handle", "auth_exists"))
            }
            other => other?,
        };
        accounts::audit(
            c,
            Some(me.id),
            "shop.authorize",
            "user",
            Some(user.id),
            &format!("shop={}", m.shop.id),
        )
    })
}

/// Revokes an authorization, which is allowed only `min_days_before_revoke` days after it was made.
pub fn revoke_authorization(
    conn: &mut DbConn,
    me: &SessionUser,
    authorization_id: i64,
    rules: AuthorizationRules,
    now: NaiveDateTime,
) -> Result<(), AppError> {
    let m = require_shop_role(conn, me, ShopRole::Owner)?;
    write_tx(conn, |c| {
        let row: Option<(i64, NaiveDateTime)> = sa::table
            .find(authorization_id)
            .filter(sa::shop_id.eq(m.shop.id))
            .filter(sa::revoked_at.is_null())
            .select((sa::user_id, sa::authorized_at))
            .first(c)
            .optional()?;
        let (user_id, at) = row.ok_or(AppError::NotFound)?;
        if now < at + Duration::days(rules.min_days_before_revoke) {
            return Err(AppError::Conflict("auth.too_early"));
        }
        diesel::update(
            sa::table
                .find(authorization_id)
                .filter(sa::revoked_at.is_null()),
        )
        .set(sa::revoked_at.eq(Some(now)))
        .execute(c)?;
        accounts::audit(
            c,
            Some(me.id),
            "shop.authorization_revoke",
            "user",
            Some(user_id),
            &format!("shop={}", m.shop.id),
        )
    })
}

// ---------- profiles and storefronts ----------

/// An account's public profile, with its shop when it is the official or an authorized account.
#[derive(Debug, Clone)]
pub struct Profile {
    pub user: User,
    pub viewer_follows: bool,
    /// The shop and whether this account is its official account.
    pub shop: Option<(Shop, bool)>,
}

pub fn profile(conn: &mut DbConn, handle: &str, viewer: Option<i64>) -> Result<Profile, AppError> {
    let user = accounts::find_by_handle(conn, handle)?;
    let viewer_follows = match viewer {
        Some(v) => {
            follows::table
                .filter(follows::follower_id.eq(v))
                .filter(follows::followee_id.eq(user.id))
                .count()
                .get_result::<i64>(conn)?
                > 0
        }
        None => false,
    };
    let shop = match shop_of_official(conn, user.id)? {
        Some(s) => Some((s, true)),
        None => sa::table
            .inner_join(shops::table)
            .filter(sa::user_id.eq(user.id))
            .filter(sa::revoked_at.is_null())
            .select(Shop::as_select())
            .first(conn)
            .optional()?
            .map(|s| (s, false)),
    };
    Ok(Profile {
        viewer_follows,
        shop,
        user,
    })
}

/// A storefront: the shop, its official account's handle and category.
#[derive(Debug, Clone)]
pub struct Storefront {
    pub shop: Shop,
    pub official_handle: String,
    pub followers: i64,
    pub category: Category,
    /// Listed products (the storefront's total when it is not filtered).
    pub listed: i64,
    /// The shop's newest scores.
    pub badge: Option<crate::dsr::score::Badge>,
    /// The page of listed products asked for (unfiltered, newest first), empty when none was.
    pub cards: Vec<crate::catalog::model::ProductCard>,
}

/// A storefront's header and, when `grid` names a page (size and offset), that page of its
/// unfiltered product grid. One round trip: the official account's follower count is a column
/// of it, the listed-product count a sub-select, the newest score badge a join and the grid JSON rows
/// ([`crate::catalog::service::ShopCards`]); on PostgreSQL every statement is a round trip.
pub fn storefront(
    conn: &mut DbConn,
    slug: &str,
    grid: Option<(i64, i64)>,
) -> Result<Storefront, AppError> {
    use crate::catalog::service::ShopCards;
    use crate::db::json_rows::{self, JsonRows};
    use crate::dsr::score::Badge;
    let slug = slug.to_ascii_lowercase();
    // No page asked for: a LIMIT 0 sub-select, so that both cases are one prepared statement.
    let (limit, offset) = grid.unwrap_or((0, 0));
    type Row = (
        Shop,
        String,
        Category,
        Option<Badge>,
        i64,
        Option<i64>,
        Option<String>,
    );
    let (shop, official_handle, category, badge, followers, listed, cards): Row =
        crate::per_backend!(conn, |c| shops::table
            .inner_join(users::table)
            .inner_join(categories::table)
            .left_join(crate::newest_snapshot_join!())
            .filter(shops::slug.eq(&slug))
            .select((
                Shop::as_select(),
                users::handle,
                Category::as_select(),
                Option::<Badge>::as_select(),
                users::followers_count,
                products::table
                    .filter(products::shop_id.eq(shops::id))
                    .filter(products::status.eq("listed"))
                    .count()
                    .single_value(),
                JsonRows::<ShopCards, 2>::new([limit, offset]),
            ))
            .first(c)
            .optional())?
        .ok_or(AppError::NotFound)?;
    Ok(Storefront {
        cards: json_rows::parse(cards.as_deref())?,
        badge,
        followers,
        listed: listed.unwrap_or(0),
        official_handle,
        category,
        shop,
    })
}

/// Moves a shop to another official account: admins only, with a reason, audit-logged.
pub fn rebind_official(
    conn: &mut DbConn,
    admin: &SessionUser,
    shop_id: i64,
    new_handle: &str,
    reason: &str,
    now: NaiveDateTime,
) -> Result<(), AppError> {
    if !admin.has_role(Role::Admin) {
        return Err(AppError::Forbidden("error.403.body"));
    }
    let reason = reason.trim();
    if reason.chars().count() < 4 || reason.chars().count() > 500 {
        return Err(AppError::field("reason", "reason_length"));
    }
    let user = accounts::find_by_handle(conn, new_handle.trim().trim_start_matches('@'))
        .map_err(|_| AppError::field("handle", "user_unknown"))?;
    let result = write_tx(conn, |c| {
        let shop: Shop = shops::table
            .find(shop_id)
            .select(Shop::as_select())
            .first(c)
            .optional()?
            .ok_or(AppError::NotFound)?;
        if shop.official_user_id == user.id {
            return Err(AppError::Conflict("shop.already_bound"));
        }
        diesel::update(
            shops::table
                .find(shop_id)
                .filter(shops::official_user_id.eq(shop.official_user_id)),
        )
        .set((
            shops::official_user_id.eq(user.id),
            shops::updated_at.eq(now),
        ))
        .execute(c)?;
        // The new official account can not stay an authorized account of any shop.
        diesel::update(
            sa::table
                .filter(sa::user_id.eq(user.id))
                .filter(sa::revoked_at.is_null()),
        )
        .set(sa::revoked_at.eq(Some(now)))
        .execute(c)?;
        accounts::ensure_role(c, user.id, Role::Merchant, now)?;
        accounts::audit(
            c,
            Some(admin.id),
            "shop.rebind",
            "shop",
            Some(shop_id),
            &format!(
                "from user {} to user {}: {reason}",
                shop.official_user_id, user.id
            ),
        )
    });
    match result {
        Err(AppError::Db(e)) if is_unique_violation(&e) => {
            Err(AppError::field("handle", "auth_is_official"))
        }
        other => other,
    }
}

/// Shops for the admin list, newest first, optionally filtered by name or slug.
pub fn admin_list_shops(
    conn: &mut DbConn,
    admin: &SessionUser,
    query: &str,
    page: crate::pagination::PageQuery,
) -> Result<crate::pagination::Paginated<(Shop, String)>, AppError> {
    if !admin.has_role(Role::Moderator) {
        return Err(AppError::Forbidden("error.403.body"));
    }
    let q = query.trim().to_lowercase();
    let pattern = crate::db::like_pattern(&q);
    let filtered = || {
        let mut b = shops::table.inner_join(users::table).into_boxed();
        if !q.is_empty() {
            b = b.filter(
                shops::slug
                    .like(pattern.clone())
                    .escape('\\')
                    .or(shops::name.like(pattern.clone()).escape('\\')),
            );
        }
        b
    };
    const PER_PAGE: i64 = 20;
    let total: i64 = filtered().count().get_result(conn)?;
    let items = filtered()
        .order(shops::id.desc())
        .limit(PER_PAGE)
        .offset(page.offset(PER_PAGE))
        .select((Shop::as_select(), users::handle))
        .load(conn)?;
    Ok(crate::pagination::Paginated {
        items,
        page: page.number(),
        per_page: PER_PAGE,
        total,
    })
}

/// The newest active shops with their official accounts' handles (the home page).
pub fn recent_shops(conn: &mut DbConn, limit: i64) -> Result<Vec<(Shop, String)>, AppError> {
    Ok(shops::table
        .inner_join(users::table)
        .filter(shops::status.eq_any(["active", "restricted"]))
        .order(shops::id.desc())
        .limit(limit)
        .select((Shop::as_select(), users::handle))
        .load(conn)?)
}

/// A category as an admin edits it.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(default)]
pub struct CategoryForm {
    pub parent_id: String,
    pub slug: String,
    pub name_zh: String,
    pub name_en: String,
    pub deposit: String,
    /// Comma-separated qualification kinds.
    pub required: String,
}

/// Creates (`id` None) or edits a category; admins only, audit-logged with before and after.
pub fn save_category(
    conn: &mut DbConn,
    admin: &SessionUser,
    id: Option<i64>,
    f: &CategoryForm,
    now: NaiveDateTime,
) -> Result<i64, AppError> {
    if !admin.has_role(Role::Admin) {
        return Err(AppError::Forbidden("error.403.body"));
    }
    let mut e = FieldErrors::new();
    let name_zh = f.name_zh.trim().to_string();
    let name_en = f.name_en.trim().to_string();
    if !(1..=20).contains(&name_zh.chars().count()) {
        e.add("name_zh", "category_name_length");
    }
    if !(1..=40).contains(&name_en.chars().count()) {
        e.add("name_en", "category_name_length");
    }
    let deposit = crate::catalog::model::parse_yuan(&f.deposit);
    if deposit.is_none() {
        e.add("deposit", "price_format");
    }
    let mut required = Vec::new();
    for k in f
        .required
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
    {
        match QualificationKind::parse(k) {
            Some(q) => required.push(q.as_str()),
            None => e.add("required", "choose_one"),
        }
    }
    let parent = match f.parent_id.trim() {
        "" => None,
        p => match p.parse::<i64>().ok().and_then(|p| category(conn, p).ok()) {
            Some(c) if c.parent_id.is_none() && Some(c.id) != id => Some(c.id),
            _ => {
                e.add("parent_id", "choose_one");
                None
            }
        },
    };
    let slug = if id.is_none() {
        check_slug(&f.slug).map_err(|c| e.add("slug", c)).ok()
    } else {
        None
    };
    e.into_result()?;
    let deposit = deposit.unwrap_or(0);
    let required = required.join(",");
    write_tx(conn, |c| match id {
        Some(id) => {
            let before = category(c, id)?;
            let rules_before = crate::governance::editor::snapshot(c)?;
            diesel::update(categories::table.find(id))
                .set((
                    categories::name_zh.eq(&name_zh),
                    categories::name_en.eq(&name_en),
                    categories::deposit_fen.eq(deposit),
                    categories::required_qualifications.eq(&required),
                ))
                .execute(c)?;
            let detail = format!(
                "{} → {}; deposit {} → {}; requires [{}] → [{}]",
                before.name_zh,
                name_zh,
                before.deposit_fen,
                deposit,
                before.required_qualifications,
                required
            );
            accounts::audit(
                c,
                Some(admin.id),
                "category.edit",
                "category",
                Some(id),
                &detail,
            )?;
            // Qualification requirements are rules: a change is a new rule-set version.
            crate::governance::editor::record_version(
                c,
                admin.id,
                &format!("category {} qualifications", before.slug),
                &rules_before,
                now,
            )?;
            Ok(id)
        }
        None => {
            let slug = slug.clone().unwrap_or_default();
            let taken: i64 = categories::table
                .filter(categories::slug.eq(&slug))
                .count()
                .get_result(c)?;
            if taken > 0 {
                return Err(AppError::field("slug", "slug_taken"));
            }
            let new_id: i64 = diesel::insert_into(categories::table)
                .values((
                    categories::parent_id.eq(parent),
                    categories::slug.eq(&slug),
                    categories::name_zh.eq(&name_zh),
                    categories::name_en.eq(&name_en),
                    categories::deposit_fen.eq(deposit),
                    categories::required_qualifications.eq(&required),
                    categories::sort_order.eq(1000i64),
                    categories::created_at.eq(now),
                ))
                .returning(categories::id)
                .get_result(c)?;
            accounts::audit(
                c,
                Some(admin.id),
                "category.create",
                "category",
                Some(new_id),
                &format!("{slug} {name_zh}"),
            )?;
            Ok(new_id)
        }
    })
}
