//! `X-Twilio-Signature` (docs/using.md): base64 HMAC-SHA1, keyed with the auth token, over the
//! public URL Twilio called followed by every POST parameter as name+value, sorted by name
//! then value. Only [`TwilioSignatureVerifier::verify`] makes a [`VerifiedTwilioRequest`],
//! so no handler can act on unverified parameters.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha1::Sha1;

type HmacSha1 = Hmac<Sha1>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TwilioSignatureError {
    #[error("missing X-Twilio-Signature")]
    Missing,
    #[error("X-Twilio-Signature does not match")]
    Mismatch,
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
    /// `PUBLIC_BASE_URL` without a trailing slash: never the caller's `Host` header.
    public_base_url: String,
}

impl TwilioSignatureVerifier {
    pub fn new(auth_token: SecretString, public_base_url: &str) -> Self {
        Self { auth_token, public_base_url: public_base_url.trim_end_matches('/').to_owned() }
    }

    /// `path_and_query` is the request's path (and query, if any) as received.
    pub fn verify(
        &self,
        path_and_query: &str,
        signature: Option<&str>,
        params: Vec<(String, String)>,
    ) -> Result<VerifiedTwilioRequest, TwilioSignatureError> {
        let signature = signature.ok_or(TwilioSignatureError::Missing)?;
        let expected = BASE64.decode(signature.trim()).map_err(|_| TwilioSignatureError::Mismatch)?;
        let url = format!("{}{}", self.public_base_url, path_and_query);
        let matches = url_variants(&url).iter().any(|candidate| {
            let mut mac = keyed(self.auth_token.expose_secret().as_bytes());
            feed(&mut mac, candidate, &params);
            mac.verify_slice(&expected).is_ok()
        });
        if matches { Ok(VerifiedTwilioRequest { params }) } else { Err(TwilioSignatureError::Mismatch) }
    }
}

/// The signature Twilio would send for `url` and `params`.
pub fn compute_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut mac = keyed(auth_token.as_bytes());
    feed(&mut mac, url, params);
    BASE64.encode(mac.finalize().into_bytes())
}

fn keyed(key: &[u8]) -> HmacSha1 {
    // HMAC takes keys of any length.
    HmacSha1::new_from_slice(key).unwrap_or_else(|e| unreachable!("hmac key: {e}"))
}

fn feed(mac: &mut HmacSha1, url: &str, params: &[(String, String)]) {
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
        assert!(v.verify("/myapp.php?foo=1&bar=2", Some("kvajT1Ptam85bY51eRf/AJRuM3w="), example_params()).is_ok());
        assert!(v.verify("/myapp.php?foo=1&bar=2", Some("RSOYDt4T1cUTdK1PDd93/VVr8B8="), example_params()).is_ok());
        let v = verifier("http://mycompany.com");
        assert!(v.verify("/myapp.php?foo=1&bar=2", Some("0ZXoZLH/DfblKGATFgpif+LLRf4="), example_params()).is_ok());
        let v = verifier("https://mycompany.com:443");
        assert!(v.verify("/myapp.php?foo=1&bar=2", Some("RSOYDt4T1cUTdK1PDd93/VVr8B8="), example_params()).is_ok());
    }

    #[test]
    fn rejects_forgeries() {
        let v = verifier("https://mycompany.com");
        let path = "/myapp.php?foo=1&bar=2";
        let good = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
        assert_eq!(v.verify(path, None, example_params()).unwrap_err(), TwilioSignatureError::Missing);
        for bad in ["", "not base64!", "RSOYDt4T1cUTdK1PDd93/VVr8B8", "AAAAAAAAAAAAAAAAAAAAAAAAAAA="] {
            assert_eq!(
                v.verify(path, Some(bad), example_params()).unwrap_err(),
                TwilioSignatureError::Mismatch,
                "{bad}"
            );
        }
        // Valid signature, but for other parameters / another path / another host.
        let mut altered = example_params();
        altered[3].1 = "+19999999999".into();
        assert!(v.verify(path, Some(good), altered).is_err());
        let mut extra = example_params();
        extra.push(("Body".into(), "injected".into()));
        assert!(v.verify(path, Some(good), extra).is_err());
        assert!(v.verify("/other.php?foo=1&bar=2", Some(good), example_params()).is_err());
        assert!(verifier("https://evil.example").verify(path, Some(good), example_params()).is_err());
    }
}
