//! Shop types: rows and the enums that parse from their stored text.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::{categories, shops};

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = shops)]
pub struct Shop {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub logo_media_id: Option<i64>,
    pub main_category_id: i64,
    pub entity_type: String,
    pub official_user_id: i64,
    pub status: String,
    /// When the current restriction or closure ends (none: until lifted, or not limited).
    pub restricted_until: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

impl Shop {
    /// The status in force at `now` (a restriction that has run out counts as active).
    pub fn status_at(&self, now: NaiveDateTime) -> ShopStatus {
        ShopStatus::at(&self.status, self.restricted_until, now)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShopStatus {
    Active,
    Restricted,
    Suspended,
    Cleared,
}

impl ShopStatus {
    /// The status in force at `now` from a shop row's status column and restriction end.
    pub fn at(status: &str, restricted_until: Option<NaiveDateTime>, now: NaiveDateTime) -> Self {
        match status {
            "restricted" if restricted_until.is_some_and(|u| u <= now) => ShopStatus::Active,
            "restricted" => ShopStatus::Restricted,
            // A closure for a number of days ends by itself; a suspension by hand (no end) lasts.
            "suspended" if restricted_until.is_some_and(|u| u <= now) => ShopStatus::Active,
            "suspended" => ShopStatus::Suspended,
            "cleared" => ShopStatus::Cleared,
            _ => ShopStatus::Active,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ShopStatus::Active => "active",
            ShopStatus::Restricted => "restricted",
            ShopStatus::Suspended => "suspended",
            ShopStatus::Cleared => "cleared",
        }
    }
    /// May list new products.
    pub fn can_list(self) -> bool {
        self == ShopStatus::Active
    }
    /// Buyers may buy (suspended and cleared shops show a notice instead).
    pub fn can_sell(self) -> bool {
        matches!(self, ShopStatus::Active | ShopStatus::Restricted)
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = categories)]
pub struct Category {
    pub id: i64,
    pub parent_id: Option<i64>,
    pub slug: String,
    pub name_zh: String,
    pub name_en: String,
    pub deposit_fen: i64,
    pub required_qualifications: String,
    pub sort_order: i64,
}

impl Category {
    pub fn name(&self, locale: crate::i18n::Locale) -> &str {
        match locale {
            crate::i18n::Locale::ZhCn => &self.name_zh,
            crate::i18n::Locale::En => &self.name_en,
        }
    }
    /// Qualification kinds this category asks of a shop.
    pub fn required(&self) -> Vec<QualificationKind> {
        self.required_qualifications
            .split(',')
            .filter_map(QualificationKind::parse)
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntityType {
    Individual,
    Enterprise,
    BrandFlagship,
}

impl EntityType {
    pub const ALL: [EntityType; 3] = [
        EntityType::Individual,
        EntityType::Enterprise,
        EntityType::BrandFlagship,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            EntityType::Individual => "individual",
            EntityType::Enterprise => "enterprise",
            EntityType::BrandFlagship => "brand_flagship",
        }
    }
    pub fn parse(s: &str) -> Option<EntityType> {
        Self::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QualificationKind {
    BusinessLicense,
    FoodLicense,
    CosmeticsFiling,
    BrandAuthorization,
    MedicalDevice,
}

impl QualificationKind {
    pub const ALL: [QualificationKind; 5] = [
        QualificationKind::BusinessLicense,
        QualificationKind::FoodLicense,
        QualificationKind::CosmeticsFiling,
        QualificationKind::BrandAuthorization,
        QualificationKind::MedicalDevice,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            QualificationKind::BusinessLicense => "business_license",
            QualificationKind::FoodLicense => "food_license",
            QualificationKind::CosmeticsFiling => "cosmetics_filing",
            QualificationKind::BrandAuthorization => "brand_authorization",
            QualificationKind::MedicalDevice => "medical_device",
        }
    }
    pub fn parse(s: &str) -> Option<QualificationKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s.trim())
    }
    /// Whether a certificate number looks right for its kind.
    pub fn number_ok(self, n: &str) -> bool {
        let n = n.trim();
        match self {
            // 统一社会信用代码: 18 characters, digits and upper-case letters.
            QualificationKind::BusinessLicense => {
                n.len() == 18
                    && n.chars()
                        .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
            }
            // 食品经营许可证: JY + 14 digits (or the older SC + 14 digits).
            QualificationKind::FoodLicense => {
                (n.starts_with("JY") || n.starts_with("SC"))
                    && n.len() == 16
                    && n[2..].chars().all(|c| c.is_ascii_digit())
            }
            _ => (4..=64).contains(&n.chars().count()) && !n.chars().any(char::is_control),
        }
    }
}

/// What a member may do in a shop. The official account is the owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ShopRole {
    /// Orders and refunds.
    CustomerService,
    /// Products and stock.
    Operator,
    /// Everything, including staff, authorizations and shop settings.
    Owner,
}

impl ShopRole {
    pub fn as_str(self) -> &'static str {
        match self {
            ShopRole::CustomerService => "customer_service",
            ShopRole::Operator => "operator",
            ShopRole::Owner => "owner",
        }
    }
    pub fn parse_staff(s: &str) -> Option<ShopRole> {
        match s {
            "operator" => Some(ShopRole::Operator),
            "customer_service" => Some(ShopRole::CustomerService),
            _ => None,
        }
    }
    /// Whether this role may do what `needed` allows. Operators and customer service have
    /// separate duties; the owner has all.
    pub fn allows(self, needed: ShopRole) -> bool {
        self == ShopRole::Owner || self == needed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn licence_numbers() {
        assert!(QualificationKind::BusinessLicense.number_ok("91310000MA1FL5XY2K"));
        assert!(!QualificationKind::BusinessLicense.number_ok("91310000"));
        assert!(QualificationKind::FoodLicense.number_ok("JY13101050012345"));
        assert!(!QualificationKind::FoodLicense.number_ok("JY1310105001234X"));
        assert!(QualificationKind::CosmeticsFiling.number_ok("沪G妆网备字2026001234"));
    }

    #[test]
    fn roles_are_separate_duties() {
        assert!(ShopRole::Owner.allows(ShopRole::Operator));
        assert!(ShopRole::Operator.allows(ShopRole::Operator));
        assert!(!ShopRole::Operator.allows(ShopRole::CustomerService));
        assert!(!ShopRole::CustomerService.allows(ShopRole::Operator));
        assert!(!ShopRole::Operator.allows(ShopRole::Owner));
    }

    #[test]
    fn restriction_runs_out() {
        let t = chrono::NaiveDate::from_ymd_opt(2026, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        let mut s = Shop {
            id: 1,
            slug: "s".into(),
            name: "n".into(),
            description: String::new(),
            logo_media_id: None,
            main_category_id: 1,
            entity_type: "individual".into(),
            official_user_id: 1,
            status: "restricted".into(),
            restricted_until: Some(t),
            created_at: t,
        };
        assert_eq!(
            s.status_at(t - chrono::Duration::seconds(1)),
            ShopStatus::Restricted
        );
        assert_eq!(s.status_at(t), ShopStatus::Active);
        s.status = "cleared".into();
        assert!(!s.status_at(t).can_sell());
    }
}
