//! Password hashing (argon2id, OWASP parameters) and the password policy.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};
use std::collections::HashSet;
use std::sync::LazyLock;

/// OWASP's argon2id recommendation: m = 19 MiB, t = 2, p = 1.
pub const M_COST_KIB: u32 = 19_456;
pub const T_COST: u32 = 2;
pub const P_COST: u32 = 1;

pub const MIN_LEN: usize = 12;
pub const MAX_LEN: usize = 128;

fn argon2() -> Argon2<'static> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn hash(password: &str) -> Result<String, crate::error::AppError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(crate::error::AppError::internal)
}

/// Checks a password against a stored PHC hash. A malformed hash never verifies.
pub fn verify(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Whether a stored hash uses other than the current algorithm and parameters.
pub fn needs_rehash(stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return true;
    };
    if parsed.algorithm.as_str() != "argon2id" {
        return true;
    }
    match Params::try_from(&parsed) {
        Ok(p) => p.m_cost() != M_COST_KIB || p.t_cost() != T_COST || p.p_cost() != P_COST,
        Err(_) => true,
    }
}

/// Spends the time a real verification would, for unknown accounts (no timing oracle).
pub fn dummy_verify(password: &str) {
    static DUMMY: LazyLock<String> =
        LazyLock::new(|| hash("dummy-password-for-timing").unwrap_or_default());
    let _ = verify(password, &DUMMY);
}

static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("common_passwords.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect()
});

/// The policy: 12–128 characters, not a common password (also not one with digits or symbols
/// tacked on), not the account's handle or email name. Returns a validation code.
pub fn check_policy(password: &str, handle: &str, email: &str) -> Result<(), &'static str> {
    let n = password.chars().count();
    if n < MIN_LEN {
        return Err("password_too_short");
    }
    if n > MAX_LEN {
        return Err("password_too_long");
    }
    let lower = password.to_lowercase();
    let stem = lower.trim_end_matches(|c: char| c.is_ascii_digit() || c.is_ascii_punctuation());
    let stem = stem.trim_start_matches(|c: char| c.is_ascii_digit() || c.is_ascii_punctuation());
    if COMMON.contains(lower.as_str()) || (stem.len() >= 6 && COMMON.contains(stem)) {
        return Err("password_common");
    }
    if lower.chars().collect::<HashSet<_>>().len() < 4 {
        return Err("password_common");
    }
    let local = email.split('@').next().unwrap_or("").to_lowercase();
    if (handle.len() >= 4 && lower.contains(&handle.to_lowercase()))
        || (local.len() >= 4 && lower.contains(&local))
    {
        return Err("password_personal");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy() {
        assert_eq!(
            check_policy("short", "li", "a@b.c"),
            Err("password_too_short")
        );
        assert_eq!(
            check_policy(&"x".repeat(129), "li", "a@b.c"),
            Err("password_too_long")
        );
        assert_eq!(
            check_policy("password1234", "li", "a@b.c"),
            Err("password_common")
        );
        assert_eq!(
            check_policy("iloveyou2024!", "li", "a@b.c"),
            Err("password_common")
        );
        assert_eq!(
            check_policy("aaaaaaaaaaaaaa", "li", "a@b.c"),
            Err("password_common")
        );
        assert_eq!(
            check_policy("zhangsan-secret-77", "zhangsan", "z@b.c"),
            Err("password_personal")
        );
        assert_eq!(
            check_policy("春天的风吹过黄河岸边的杨柳", "li", "a@b.c"),
            Ok(())
        );
        assert_eq!(
            check_policy("violet-harbor-train-42", "li", "a@b.c"),
            Ok(())
        );
    }

    #[test]
    fn hash_uses_owasp_argon2id_and_verifies() {
        let h = hash("violet-harbor-train-42").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("violet-harbor-train-42", &h));
        assert!(!verify("violet-harbor-train-43", &h));
        assert!(!needs_rehash(&h));
        assert!(!verify("x", "not a hash"));
        let old = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(4096, 1, 1, None).unwrap(),
        )
        .hash_password(b"violet-harbor-train-42", &SaltString::generate(&mut OsRng))
        .unwrap()
        .to_string();
        assert!(needs_rehash(&old));
        assert!(verify("violet-harbor-train-42", &old));
    }
}
