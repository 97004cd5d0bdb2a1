//! Payment providers. A provider takes the buyer to its page for an intent and later reports
//! the outcome with a callback that carries a unique event id; the callback is verified by the
//! provider and applied once by [`super::service::apply_payment_event`].
//!
//! The built-in simulated provider lets the platform run with no outside service: its "page"
//! is ours (`/pay/sim/{intent}`, where the buyer chooses to pay or to fail), and its callbacks
//! are signed with HMAC-SHA256 under the server secret, as a real provider signs with a shared
//! key. Carrier scans (delivered) use the same signing.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::service::PaymentEvent;

pub trait PaymentProvider: Send + Sync {
    /// The name stored with payments and events.
    fn name(&self) -> &'static str;
    /// Where the buyer goes to pay an intent.
    fn checkout_url(&self, intent: &str) -> String;
    /// The event a callback reports, when its signature holds.
    fn verify(
        &self,
        event_id: &str,
        intent: &str,
        outcome: &str,
        signature: &str,
    ) -> Option<PaymentEvent>;
}

/// The simulated provider.
pub struct Simulated {
    secret: Vec<u8>,
}

impl Simulated {
    pub fn new(secret: &[u8]) -> Simulated {
        Simulated {
            secret: secret.to_vec(),
        }
    }
    /// The signature of a callback (what the provider sends with it).
    pub fn sign(&self, event_id: &str, intent: &str, outcome: &str) -> String {
        sign(&self.secret, &format!("pay:{event_id}:{intent}:{outcome}"))
    }
    /// A new callback for an intent, as the provider would send it: (event id, signature).
    pub fn callback(&self, intent: &str, succeeded: bool) -> (String, String) {
        let event_id = format!("sim_{}", &crate::accounts::session::random_token()[..24]);
        let sig = self.sign(&event_id, intent, outcome_str(succeeded));
        (event_id, sig)
    }
}

pub fn outcome_str(succeeded: bool) -> &'static str {
    if succeeded {
        "succeeded"
    } else {
        "failed"
    }
}

impl PaymentProvider for Simulated {
    fn name(&self) -> &'static str {
        "sim"
    }
    fn checkout_url(&self, intent: &str) -> String {
        format!("/pay/sim/{intent}")
    }
    fn verify(
        &self,
        event_id: &str,
        intent: &str,
        outcome: &str,
        signature: &str,
    ) -> Option<PaymentEvent> {
        let ok_shape = (8..=80).contains(&event_id.len())
            && (16..=80).contains(&intent.len())
            && matches!(outcome, "succeeded" | "failed");
        if !ok_shape {
            return None;
        }
        let expected = self.sign(event_id, intent, outcome);
        crate::web::csrf::ct_eq(&expected, signature).then(|| PaymentEvent {
            provider: self.name().to_string(),
            event_id: event_id.to_string(),
            intent: intent.to_string(),
            succeeded: outcome == "succeeded",
        })
    }
}

/// HMAC-SHA256 of `msg` under `secret`, hex.
pub fn sign(secret: &[u8], msg: &str) -> String {
    match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mut mac) => {
            mac.update(b"haodian-callback:");
            mac.update(msg.as_bytes());
            hex::encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

/// The signature a carrier's delivery scan carries.
pub fn sign_delivery(secret: &[u8], order_no: &str) -> String {
    sign(secret, &format!("delivered:{order_no}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callbacks_verify_only_with_their_signature() {
        let p = Simulated::new(b"0123456789abcdef0123456789abcdef");
        let intent = "a".repeat(40);
        let (id, sig) = p.callback(&intent, true);
        let ev = p.verify(&id, &intent, "succeeded", &sig).expect("valid");
        assert!(ev.succeeded);
        assert!(p.verify(&id, &intent, "failed", &sig).is_none());
        assert!(p.verify(&id, &"b".repeat(40), "succeeded", &sig).is_none());
        let other = Simulated::new(b"another-secret-another-secret-xx");
        assert!(other.verify(&id, &intent, "succeeded", &sig).is_none());
    }
}
