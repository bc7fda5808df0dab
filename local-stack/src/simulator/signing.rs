//! How the providers sign the webhooks they send, written from their documentation and kept
//! apart from the bridge's verifiers on purpose: a mistake shared by both would otherwise
//! pass every local test.

use base64::Engine;
use hmac::{KeyInit, Mac};

/// Twilio's `X-Twilio-Signature`: base64 HMAC-SHA1, keyed with the auth token, of the full
/// URL Twilio requested followed by every POST parameter's name and value, sorted by name
/// (Twilio's "Webhooks security" page).
pub fn twilio_signature(auth_token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let mut sorted: Vec<&(&str, &str)> = params.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0).then(a.1.cmp(b.1)));
    let mut mac = <hmac::Hmac<sha1::Sha1>>::new_from_slice(auth_token.as_bytes()).expect("HMAC takes any key length");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Meta's `X-Hub-Signature-256`: `sha256=` and the hex HMAC-SHA256 of the raw body, keyed
/// with the app secret.
pub fn meta_signature(app_secret: &str, body: &[u8]) -> String {
    let mut mac = <hmac::Hmac<sha2::Sha256>>::new_from_slice(app_secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twilio_signature_matches_twilios_published_examples() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let call = |caller| {
            [
                ("CallSid", "CA1234567890ABCDE"),
                ("Caller", caller),
                ("Digits", "1234"),
                ("From", caller),
                ("To", "+18005551212"),
            ]
        };
        // The "Webhooks security" page's example, and twilio-python's test vector.
        assert_eq!(twilio_signature("12345", url, &call("+12349013030")), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
        assert_eq!(twilio_signature("12345", url, &call("+14158675309")), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
        // A repeated name: its values in sorted order.
        let repeated = [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234")];
        assert_eq!(twilio_signature("12345", url, &repeated), "IK+Dwps556ElfBT0I3Rgjkr1wJU=");
    }

    #[test]
    fn both_signatures_are_accepted_by_the_bridges_verifiers() {
        use secrecy::SecretString;
        use shared::adapters::twilio::TwilioSignatureVerifier;
        use shared::adapters::whatsapp::signature::MetaSignatureVerifier;

        let params = [("Body", "Hi & bye"), ("From", "+14155550134"), ("MediaUrl0", "https://x/y?a=1")];
        let signature = twilio_signature("token", "http://127.0.0.1:8080/sms/inbound", &params);
        let owned = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let verifier = TwilioSignatureVerifier::new(SecretString::from("token"), "http://127.0.0.1:8080");
        assert!(verifier.verify("/sms/inbound", Some(&signature), None, owned).is_ok());

        let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
        let verifier = MetaSignatureVerifier::new(SecretString::from("secret"));
        assert!(verifier.verify(Some(&meta_signature("secret", body)), body).is_ok());
        assert!(verifier.verify(Some(&meta_signature("other", body)), body).is_err());
    }
}
