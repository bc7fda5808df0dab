//! `X-Twilio-Signature` (docs/using.md): base64 HMAC, over the public URL Twilio called
//! followed by every POST parameter as name+value, sorted by name then value. By default the
//! key is the auth token and the hash SHA-1. A Webhook Setting with a shared key (Twilio's
//! Webhooks configuration API, "Sign webhooks with shared keys", public beta, page of
//! 2026-09-07) signs the same string with that key and the Setting's algorithm, and says so in
//! `X-Twilio-Webhooks-Signature-Settings: key=…,algorithm=HMAC_SHA256`: the bridge verifies
//! those with `TWILIO_WEBHOOK_SHARED_KEY`, or refuses them naming that variable.
//! Only [`TwilioSignatureVerifier::verify`] makes a [`VerifiedTwilioRequest`], so no handler
//! can act on unverified parameters.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha1::Sha1;
use sha2::Sha256;

/// The header a Webhook Setting's signature adds, naming its key and algorithm.
pub const SIGNATURE_SETTINGS_HEADER: &str = "x-twilio-webhooks-signature-settings";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TwilioSignatureError {
    #[error("missing X-Twilio-Signature")]
    Missing,
    #[error("X-Twilio-Signature does not match")]
    Mismatch,
    #[error(
        "signed with a Twilio Webhook Setting's shared key (X-Twilio-Webhooks-Signature-Settings), \
         and TWILIO_WEBHOOK_SHARED_KEY is not set: set it to that key's secret, or remove the \
         Webhook Rule (docs/deploying.md)"
    )]
    SharedKeyNotConfigured,
    #[error("X-Twilio-Webhooks-Signature-Settings names an algorithm this bridge doesn't verify: {0:?}")]
    UnsupportedAlgorithm(String),
}

/// How Twilio signed a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureAlgorithm {
    HmacSha1,
    HmacSha256,
}

impl SignatureAlgorithm {
    /// The `algorithm=` of `X-Twilio-Webhooks-Signature-Settings`.
    fn from_settings(settings: &str) -> Result<Self, TwilioSignatureError> {
        let algorithm = settings
            .split(',')
            .filter_map(|pair| pair.split_once('='))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("algorithm"))
            .map(|(_, value)| value.trim())
            .unwrap_or_default();
        match algorithm {
            "HMAC_SHA256" => Ok(Self::HmacSha256),
            "HMAC_SHA1" => Ok(Self::HmacSha1),
            // Only what the header says, cut short and scrubbed of digit runs: it is the
            // caller's text, and it is logged.
            other => Err(TwilioSignatureError::UnsupportedAlgorithm(crate::domain::scrub_numbers(
                &other.chars().take(32).collect::<String>(),
            ))),
        }
    }
}

/// Parameters whose signature was checked.
#[derive(Debug, Clone)]
pub struct VerifiedTwilioRequest {
    params: Vec<(String, String)>,
}

impl VerifiedTwilioRequest {
    /// The first value of parameter `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

pub struct TwilioSignatureVerifier {
    auth_token: SecretString,
    /// `TWILIO_WEBHOOK_SHARED_KEY`: a Webhook Setting's shared key secrets (two while a key
    /// is rotated), for requests that carry the settings header.
    shared_keys: Vec<SecretString>,
    /// `PUBLIC_BASE_URL` without a trailing slash: never the caller's `Host` header.
    public_base_url: String,
}

impl TwilioSignatureVerifier {
    pub fn new(auth_token: SecretString, public_base_url: &str) -> Self {
        Self { auth_token, shared_keys: Vec::new(), public_base_url: public_base_url.trim_end_matches('/').to_owned() }
    }

    /// Also accepts requests signed with these shared keys, as the settings header says.
    pub fn with_shared_keys(mut self, shared_keys: Vec<SecretString>) -> Self {
        self.shared_keys = shared_keys;
        self
    }

    /// `path_and_query` is the request's path (and query, if any) as received; `settings`
    /// is its `X-Twilio-Webhooks-Signature-Settings`, if any.
    pub fn verify(
        &self,
        path_and_query: &str,
        signature: Option<&str>,
        settings: Option<&str>,
        params: Vec<(String, String)>,
    ) -> Result<VerifiedTwilioRequest, TwilioSignatureError> {
        let signature = signature.ok_or(TwilioSignatureError::Missing)?;
        let (algorithm, keys) = match settings {
            None => (SignatureAlgorithm::HmacSha1, std::slice::from_ref(&self.auth_token)),
            Some(settings) => {
                let algorithm = SignatureAlgorithm::from_settings(settings)?;
                if self.shared_keys.is_empty() {
                    return Err(TwilioSignatureError::SharedKeyNotConfigured);
                }
                (algorithm, self.shared_keys.as_slice())
            }
        };
        let expected = BASE64.decode(signature.trim()).map_err(|_| TwilioSignatureError::Mismatch)?;
        let url = format!("{}{}", self.public_base_url, path_and_query);
        let matches = url_variants(&url).iter().any(|candidate| {
            keys.iter().any(|key| signs(algorithm, key.expose_secret().as_bytes(), candidate, &params, &expected))
        });
        if matches { Ok(VerifiedTwilioRequest { params }) } else { Err(TwilioSignatureError::Mismatch) }
    }
}

/// The signature Twilio would send for `url` and `params`, signed with the auth token.
pub fn compute_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    compute_signature_with(SignatureAlgorithm::HmacSha1, auth_token, url, params)
}

/// The signature Twilio would send for `url` and `params`, with `key` and `algorithm`.
pub fn compute_signature_with(
    algorithm: SignatureAlgorithm,
    key: &str,
    url: &str,
    params: &[(String, String)],
) -> String {
    let digest = match algorithm {
        SignatureAlgorithm::HmacSha1 => mac::<Hmac<Sha1>>(key.as_bytes(), url, params).finalize().into_bytes().to_vec(),
        SignatureAlgorithm::HmacSha256 => {
            mac::<Hmac<Sha256>>(key.as_bytes(), url, params).finalize().into_bytes().to_vec()
        }
    };
    BASE64.encode(digest)
}

fn signs(algorithm: SignatureAlgorithm, key: &[u8], url: &str, params: &[(String, String)], expected: &[u8]) -> bool {
    match algorithm {
        SignatureAlgorithm::HmacSha1 => mac::<Hmac<Sha1>>(key, url, params).verify_slice(expected).is_ok(),
        SignatureAlgorithm::HmacSha256 => mac::<Hmac<Sha256>>(key, url, params).verify_slice(expected).is_ok(),
    }
}

fn mac<M: Mac + KeyInit>(key: &[u8], url: &str, params: &[(String, String)]) -> M {
    // HMAC takes keys of any length.
    let mut mac = <M as KeyInit>::new_from_slice(key).unwrap_or_else(|e| unreachable!("hmac key: {e}"));
    feed(&mut mac, url, params);
    mac
}

fn feed(mac: &mut impl Mac, url: &str, params: &[(String, String)]) {
    mac.update(url.as_bytes());
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
}

/// The URL as configured, plus the same URL with its scheme's default port added or
/// removed: Twilio signs whichever form the webhook was configured with.
fn url_variants(url: &str) -> Vec<String> {
    let mut variants = vec![url.to_owned()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return variants;
    };
    let default_port = match scheme {
        "https" => ":443",
        "http" => ":80",
        _ => return variants,
    };
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(split);
    if let Some(host) = authority.strip_suffix(default_port) {
        variants.push(format!("{scheme}://{host}{tail}"));
    } else if !authority.contains(':') {
        variants.push(format!("{scheme}://{authority}{default_port}{tail}"));
    }
    variants
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Twilio's published example (twilio-python's `test_request_validator.py`).
    const TOKEN: &str = "12345";
    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

    fn example_params() -> Vec<(String, String)> {
        [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    #[test]
    fn matches_twilios_published_vectors() {
        assert_eq!(compute_signature(TOKEN, URL, &example_params()), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
        let repeated: Vec<(String, String)> =
            [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        assert_eq!(compute_signature(TOKEN, URL, &repeated), "IK+Dwps556ElfBT0I3Rgjkr1wJU=");
    }

    fn verifier(base: &str) -> TwilioSignatureVerifier {
        TwilioSignatureVerifier::new(SecretString::from(TOKEN), base)
    }

    #[test]
    fn verifies_with_and_without_the_default_port() {
        let v = verifier("https://mycompany.com/");
        // Signed by Twilio over the URL with :443 (published vector).
        assert!(
            v.verify("/myapp.php?foo=1&bar=2", Some("kvajT1Ptam85bY51eRf/AJRuM3w="), None, example_params()).is_ok()
        );
        assert!(
            v.verify("/myapp.php?foo=1&bar=2", Some("RSOYDt4T1cUTdK1PDd93/VVr8B8="), None, example_params()).is_ok()
        );
        let v = verifier("http://mycompany.com");
        assert!(
            v.verify("/myapp.php?foo=1&bar=2", Some("0ZXoZLH/DfblKGATFgpif+LLRf4="), None, example_params()).is_ok()
        );
        let v = verifier("https://mycompany.com:443");
        assert!(
            v.verify("/myapp.php?foo=1&bar=2", Some("RSOYDt4T1cUTdK1PDd93/VVr8B8="), None, example_params()).is_ok()
        );
    }

    #[test]
    fn rejects_forgeries() {
        let v = verifier("https://mycompany.com");
        let path = "/myapp.php?foo=1&bar=2";
        let good = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
        assert_eq!(v.verify(path, None, None, example_params()).unwrap_err(), TwilioSignatureError::Missing);
        for bad in ["", "not base64!", "RSOYDt4T1cUTdK1PDd93/VVr8B8", "AAAAAAAAAAAAAAAAAAAAAAAAAAA="] {
            assert_eq!(
                v.verify(path, Some(bad), None, example_params()).unwrap_err(),
                TwilioSignatureError::Mismatch,
                "{bad}"
            );
        }
        // Valid signature, but for other parameters / another path / another host.
        let mut altered = example_params();
        altered[3].1 = "+19999999999".into();
        assert!(v.verify(path, Some(good), None, altered).is_err());
        let mut extra = example_params();
        extra.push(("Body".into(), "injected".into()));
        assert!(v.verify(path, Some(good), None, extra).is_err());
        assert!(v.verify("/other.php?foo=1&bar=2", Some(good), None, example_params()).is_err());
        assert!(verifier("https://evil.example").verify(path, Some(good), None, example_params()).is_err());
    }

    /// HMAC-SHA256 with a shared key over Twilio's example, computed independently:
    /// `printf '%s' "$URL$SORTED_PARAMS" | openssl dgst -sha256 -hmac shared-key-secret -binary | base64`
    /// (the same command with SHA-1 and the auth token gives Twilio's published vector).
    const SHARED_KEY: &str = "shared-key-secret";
    const SHA256_VECTOR: &str = "E5VnwNBwyz0tCHTP5Dkbb6TefPRbPKoGqFaaypGFqwI=";
    const SETTINGS: &str = "key=webhooks_sharedkey_01jexample,algorithm=HMAC_SHA256";

    #[test]
    fn shared_key_signatures_match_an_independent_hmac_sha256() {
        let computed = compute_signature_with(SignatureAlgorithm::HmacSha256, SHARED_KEY, URL, &example_params());
        assert_eq!(computed, SHA256_VECTOR);
    }

    #[test]
    fn a_webhook_setting_signature_is_verified_with_the_shared_key_its_header_names() {
        let path = "/myapp.php?foo=1&bar=2";
        let rotated = vec![SecretString::from("old-secret"), SecretString::from(SHARED_KEY)];
        let v = verifier("https://mycompany.com").with_shared_keys(rotated);
        assert!(v.verify(path, Some(SHA256_VECTOR), Some(SETTINGS), example_params()).is_ok());
        assert!(v.verify(path, Some(SHA256_VECTOR), Some(" algorithm=HMAC_SHA256 , key=x"), example_params()).is_ok());
        // The auth token's signature is no good once the header says a shared key signed.
        let token_signed = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
        assert_eq!(
            v.verify(path, Some(token_signed), Some(SETTINGS), example_params()).unwrap_err(),
            TwilioSignatureError::Mismatch
        );
        // Without the header, the auth token still signs (other webhooks of the account).
        assert!(v.verify(path, Some(token_signed), None, example_params()).is_ok());
        // The shared key's signature without the header, or under SHA-1, is refused.
        assert!(v.verify(path, Some(SHA256_VECTOR), None, example_params()).is_err());
        let sha1 = "key=k,algorithm=HMAC_SHA1";
        assert!(v.verify(path, Some(SHA256_VECTOR), Some(sha1), example_params()).is_err());
        let sha1_signed = compute_signature_with(SignatureAlgorithm::HmacSha1, SHARED_KEY, URL, &example_params());
        assert!(v.verify(path, Some(&sha1_signed), Some(sha1), example_params()).is_ok());
    }

    #[test]
    fn a_webhook_setting_signature_without_a_shared_key_or_with_an_unknown_algorithm_says_why() {
        let path = "/myapp.php?foo=1&bar=2";
        let without = verifier("https://mycompany.com");
        let refused = without.verify(path, Some(SHA256_VECTOR), Some(SETTINGS), example_params()).unwrap_err();
        assert_eq!(refused, TwilioSignatureError::SharedKeyNotConfigured);
        assert!(refused.to_string().contains("TWILIO_WEBHOOK_SHARED_KEY"), "{refused}");
        let with = verifier("https://mycompany.com").with_shared_keys(vec![SecretString::from(SHARED_KEY)]);
        let scrubbed = crate::domain::scrub_numbers("+14155550134");
        assert!(!scrubbed.contains("4155550134"), "{scrubbed}");
        for (settings, named) in [
            ("key=k,algorithm=HMAC_SHA512", "HMAC_SHA512"),
            ("key=k", ""),
            ("algorithm=+14155550134", scrubbed.as_str()),
        ] {
            assert_eq!(
                with.verify(path, Some(SHA256_VECTOR), Some(settings), example_params()).unwrap_err(),
                TwilioSignatureError::UnsupportedAlgorithm(named.into())
            );
        }
    }
}
