//! `X-Hub-Signature-256` (docs/using.md): `sha256=` + hex HMAC-SHA256 of the raw body, keyed with
//! the Meta app secret. Checked before anything parses the body; only
//! [`MetaSignatureVerifier::verify`] makes a [`VerifiedMetaPayload`].

use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetaSignatureError {
    #[error("missing X-Hub-Signature-256")]
    Missing,
    #[error("X-Hub-Signature-256 does not match")]
    Mismatch,
}

/// A webhook body whose signature was checked.
#[derive(Debug, Clone)]
pub struct VerifiedMetaPayload {
    body: Vec<u8>,
}

impl VerifiedMetaPayload {
    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

pub struct MetaSignatureVerifier {
    app_secret: SecretString,
}

impl MetaSignatureVerifier {
    pub fn new(app_secret: SecretString) -> Self {
        Self { app_secret }
    }

    pub fn verify(&self, header: Option<&str>, body: &[u8]) -> Result<VerifiedMetaPayload, MetaSignatureError> {
        let header = header.ok_or(MetaSignatureError::Missing)?;
        let hex_digest = header.trim().strip_prefix("sha256=").ok_or(MetaSignatureError::Mismatch)?;
        let expected = hex::decode(hex_digest).map_err(|_| MetaSignatureError::Mismatch)?;
        let mut mac = keyed(self.app_secret.expose_secret().as_bytes());
        mac.update(body);
        mac.verify_slice(&expected).map_err(|_| MetaSignatureError::Mismatch)?;
        Ok(VerifiedMetaPayload { body: body.to_vec() })
    }
}

/// The header value Meta would send for `body`.
pub fn compute_signature(app_secret: &str, body: &[u8]) -> String {
    let mut mac = keyed(app_secret.as_bytes());
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Whether the `hub.verify_token` of Meta's subscription check is ours. Both tokens are
/// hashed first and the hashes compared in constant time, so not even a difference in
/// length shows in the time taken.
pub fn verify_token_matches(given: &str, expected: &str) -> bool {
    let digest = |token: &str| {
        let mut mac = keyed(b"hub.verify_token");
        mac.update(token.as_bytes());
        mac
    };
    digest(expected).verify_slice(&digest(given).finalize().into_bytes()).is_ok()
}

fn keyed(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length.
    HmacSha256::new_from_slice(key).unwrap_or_else(|e| unreachable!("hmac key: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            compute_signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn verifies_only_the_exact_body() {
        let v = MetaSignatureVerifier::new(SecretString::from("app-secret"));
        let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
        let good = compute_signature("app-secret", body);
        assert_eq!(v.verify(Some(&good), body).unwrap().body(), body);
        assert_eq!(v.verify(Some(&good.to_uppercase().replace("SHA256=", "sha256=")), body).map(|_| ()), Ok(()));
        assert_eq!(v.verify(None, body).unwrap_err(), MetaSignatureError::Missing);
        let mut altered = body.to_vec();
        altered[2] ^= 1;
        assert_eq!(v.verify(Some(&good), &altered).unwrap_err(), MetaSignatureError::Mismatch);
        for bad in ["", "sha256=", "sha1=abcd", "sha256=zz", &good[7..], &compute_signature("other", body)] {
            assert_eq!(v.verify(Some(bad), body).unwrap_err(), MetaSignatureError::Mismatch, "{bad}");
        }
    }

    #[test]
    fn the_verify_token_matches_only_itself() {
        assert!(verify_token_matches("s3cret-token", "s3cret-token"));
        for other in ["", "s3cret-toke", "s3cret-token ", "S3cret-token", "s3cret-tokem", "x".repeat(10_000).as_str()] {
            assert!(!verify_token_matches(other, "s3cret-token"), "{other:?}");
        }
    }
}
