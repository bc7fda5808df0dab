//! Media between MMS and WhatsApp (docs/media.md).
//!
//! Neither provider can fetch the other's media: Twilio's media URLs may require the
//! account's Basic auth, and WhatsApp's need the business's access token. So each side gets
//! a short-lived URL of the bridge's own, `PUBLIC_BASE_URL/media/<source>/<ref>?exp=&sig=`,
//! signed with HMAC-SHA256; the SMS webhook's `GET /media` verifies it and fetches the media
//! from its provider, sending credentials only to that provider's hosts.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use jiff::Timestamp;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The media kinds a WhatsApp message can carry by link, and the MIME types Meta accepts
/// for each (Cloud API "supported media types").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhatsAppMediaKind {
    Image,
    Video,
    Audio,
    Document,
}

impl WhatsAppMediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Video => "video",
            Self::Audio => "audio",
            Self::Document => "document",
        }
    }

    /// How a customer's MMS part can go to WhatsApp, if at all. Parameters (`; charset=`)
    /// and case are ignored.
    pub fn for_content_type(content_type: &str) -> Option<Self> {
        let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        match essence.as_str() {
            "image/jpeg" | "image/png" => Some(Self::Image),
            "video/mp4" | "video/3gpp" => Some(Self::Video),
            "audio/aac" | "audio/amr" | "audio/mpeg" | "audio/mp4" | "audio/ogg" => Some(Self::Audio),
            "application/pdf"
            | "text/plain"
            | "application/msword"
            | "application/vnd.ms-excel"
            | "application/vnd.ms-powerpoint"
            | "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
            | "application/vnd.openxmlformats-officedocument.spreadsheetml.presentation"
            | "application/vnd.openxmlformats-officedocument.presentationml.presentation"
            | "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => Some(Self::Document),
            _ => None,
        }
    }
}

/// A WhatsApp media object an agent sent (its id at the Graph API).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhatsAppMedia {
    pub id: String,
    pub mime_type: String,
}

impl WhatsAppMedia {
    /// Media ids are digits; anything else is refused before it reaches a URL.
    pub fn parse(id: &str, mime_type: &str) -> Option<Self> {
        let ok = (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_digit());
        ok.then(|| Self { id: id.to_owned(), mime_type: mime_type.to_owned() })
    }
}

/// Where a relayed media item comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaSource {
    /// A customer's MMS part at the SMS provider: the reference is its URL.
    Sms,
    /// An agent's WhatsApp media: the reference is its media id.
    WhatsApp,
}

impl MediaSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::WhatsApp => "wa",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        match input {
            "sms" => Some(Self::Sms),
            "wa" => Some(Self::WhatsApp),
            _ => None,
        }
    }
}

/// The key media URLs are signed with.
#[derive(Clone)]
pub struct MediaUrlKey(Vec<u8>);

impl fmt::Debug for MediaUrlKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MediaUrlKey([REDACTED])")
    }
}

impl MediaUrlKey {
    /// Derived from a secret both functions that sign or check media URLs have: the
    /// deployment's `MEDIA_LINK_KEY`, or, without one, the Twilio auth token (then there is
    /// no extra secret to deploy or rotate, and rotating the token invalidates every
    /// outstanding media URL). `config::media_url_key` chooses.
    pub fn derive(secret: &SecretString) -> Self {
        let mut mac = hmac::Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(b"sms-whatsapp-bridge media url v1");
        Self(mac.finalize().into_bytes().to_vec())
    }

    fn mac(&self, source: MediaSource, reference: &str, expires: i64) -> hmac::Hmac<Sha256> {
        let mut mac = hmac::Hmac::<Sha256>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(format!("{}\n{reference}\n{expires}", source.as_str()).as_bytes());
        mac
    }

    /// `base/media/<source>/<ref>?exp=<unix seconds>&sig=<hex>`; the reference travels
    /// base64url-encoded so a URL fits in one path segment.
    pub fn sign(&self, base: &str, source: MediaSource, reference: &str, expires: Timestamp) -> String {
        let exp = expires.as_second();
        let sig = hex::encode(self.mac(source, reference, exp).finalize().into_bytes());
        let encoded = URL_SAFE_NO_PAD.encode(reference.as_bytes());
        format!("{}{MEDIA_PATH_PREFIX}{}/{encoded}?exp={exp}&sig={sig}", base.trim_end_matches('/'), source.as_str())
    }

    /// The media a signed URL's parts name, if the signature holds and it hasn't expired.
    pub fn verify(
        &self,
        source: &str,
        encoded_reference: &str,
        exp: &str,
        sig: &str,
        now: Timestamp,
    ) -> Result<(MediaSource, String), MediaUrlError> {
        let source = MediaSource::parse(source).ok_or(MediaUrlError::Invalid)?;
        let reference = URL_SAFE_NO_PAD
            .decode(encoded_reference)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or(MediaUrlError::Invalid)?;
        let expires: i64 = exp.parse().map_err(|_| MediaUrlError::Invalid)?;
        let sig = hex::decode(sig).map_err(|_| MediaUrlError::Invalid)?;
        self.mac(source, &reference, expires).verify_slice(&sig).map_err(|_| MediaUrlError::Invalid)?;
        if expires < now.as_second() {
            return Err(MediaUrlError::Expired);
        }
        Ok((source, reference))
    }
}

pub const MEDIA_PATH_PREFIX: &str = "/media/";

/// How long a media link works: long enough for the provider to fetch it when the message
/// goes out (and for a retry or two), short enough that a leaked link soon stops working.
pub const MEDIA_LINK_TTL: std::time::Duration = std::time::Duration::from_secs(3600);

/// Makes the bridge's media links for one deployment.
#[derive(Debug, Clone)]
pub struct MediaLinks {
    key: MediaUrlKey,
    public_base_url: String,
    ttl: std::time::Duration,
}

impl MediaLinks {
    pub fn new(key: MediaUrlKey, public_base_url: &str, ttl: std::time::Duration) -> Self {
        Self { key, public_base_url: public_base_url.to_owned(), ttl }
    }

    pub fn link(&self, source: MediaSource, reference: &str, now: Timestamp) -> String {
        let ttl = jiff::SignedDuration::try_from(self.ttl).unwrap_or(jiff::SignedDuration::from_hours(1));
        self.key.sign(&self.public_base_url, source, reference, now.saturating_add(ttl).unwrap_or(now))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MediaUrlError {
    #[error("not a valid media link")]
    Invalid,
    #[error("this media link has expired")]
    Expired,
}

/// Whether `host` belongs to the provider whose credentials would be sent: exactly one of
/// `hosts` or a subdomain of one of `domains`. Checked before every authenticated fetch
/// (docs/media.md: credentials never go to another host).
pub fn host_allowed(host: &str, hosts: &[&str], domains: &[&str]) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    hosts.iter().any(|h| host == h.to_ascii_lowercase())
        || domains.iter().any(|d| host.strip_suffix(&format!(".{d}")).is_some_and(|sub| !sub.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MediaUrlKey {
        MediaUrlKey::derive(&SecretString::from("twilio-auth-token"))
    }

    fn parts(url: &str) -> (String, String, String, String) {
        let path = url.split_once(MEDIA_PATH_PREFIX).unwrap().1;
        let (path, query) = path.split_once('?').unwrap();
        let (source, reference) = path.split_once('/').unwrap();
        let exp = query.split('&').find_map(|p| p.strip_prefix("exp=")).unwrap();
        let sig = query.split('&').find_map(|p| p.strip_prefix("sig=")).unwrap();
        (source.into(), reference.into(), exp.into(), sig.into())
    }

    #[test]
    fn signed_urls_verify_until_they_expire() {
        let now: Timestamp = "2026-11-25T12:00:00Z".parse().unwrap();
        let twilio = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1";
        let url = key().sign("https://x.example/", MediaSource::Sms, twilio, now + jiff::SignedDuration::from_mins(30));
        assert!(url.starts_with("https://x.example/media/sms/"), "{url}");
        let (source, reference, exp, sig) = parts(&url);
        assert_eq!(key().verify(&source, &reference, &exp, &sig, now), Ok((MediaSource::Sms, twilio.to_owned())));
        let later = now + jiff::SignedDuration::from_mins(31);
        assert_eq!(key().verify(&source, &reference, &exp, &sig, later), Err(MediaUrlError::Expired));
    }

    #[test]
    fn any_change_breaks_the_signature() {
        let now: Timestamp = "2026-11-25T12:00:00Z".parse().unwrap();
        let url =
            key().sign("https://x", MediaSource::WhatsApp, "1234567890", now + jiff::SignedDuration::from_mins(5));
        let (source, reference, exp, sig) = parts(&url);
        let other_ref = URL_SAFE_NO_PAD.encode("1234567891");
        let cases = [
            ("sms", reference.as_str(), exp.as_str(), sig.as_str()),
            (source.as_str(), other_ref.as_str(), exp.as_str(), sig.as_str()),
            (source.as_str(), reference.as_str(), "9999999999", sig.as_str()),
            (source.as_str(), reference.as_str(), exp.as_str(), &sig[..62]),
            (source.as_str(), reference.as_str(), exp.as_str(), "zz"),
            ("http", reference.as_str(), exp.as_str(), sig.as_str()),
            (source.as_str(), "%%%", exp.as_str(), sig.as_str()),
        ];
        for (s, r, e, g) in cases {
            assert_eq!(key().verify(s, r, e, g, now), Err(MediaUrlError::Invalid), "{s} {r} {e} {g}");
        }
        let other_key = MediaUrlKey::derive(&SecretString::from("another-token"));
        assert_eq!(other_key.verify(&source, &reference, &exp, &sig, now), Err(MediaUrlError::Invalid));
        assert_eq!(format!("{:?}", key()), "MediaUrlKey([REDACTED])");
    }

    #[test]
    fn only_the_providers_hosts_get_credentials() {
        let twilio = (["api.twilio.com"], ["twilio.com"]);
        for ok in ["api.twilio.com", "API.Twilio.com", "media.twilio.com", "api.twilio.com."] {
            assert!(host_allowed(ok, &twilio.0, &twilio.1), "{ok}");
        }
        for bad in ["twilio.com.evil.example", "eviltwilio.com", "example.com", "", ".twilio.com", "s3.amazonaws.com"] {
            assert!(!host_allowed(bad, &twilio.0, &twilio.1), "{bad}");
        }
    }

    #[test]
    fn whatsapp_takes_the_media_types_meta_documents() {
        assert_eq!(WhatsAppMediaKind::for_content_type("image/jpeg"), Some(WhatsAppMediaKind::Image));
        assert_eq!(WhatsAppMediaKind::for_content_type("IMAGE/PNG; q=1"), Some(WhatsAppMediaKind::Image));
        assert_eq!(WhatsAppMediaKind::for_content_type("video/mp4"), Some(WhatsAppMediaKind::Video));
        assert_eq!(WhatsAppMediaKind::for_content_type("audio/amr"), Some(WhatsAppMediaKind::Audio));
        assert_eq!(WhatsAppMediaKind::for_content_type("application/pdf"), Some(WhatsAppMediaKind::Document));
        for unsupported in ["image/gif", "text/vcard", "text/x-vcard", "image/heic", "", "application/octet-stream"] {
            assert_eq!(WhatsAppMediaKind::for_content_type(unsupported), None, "{unsupported}");
        }
        assert!(WhatsAppMedia::parse("1013859600285441", "image/jpeg").is_some());
        for bad in ["", "../me", "12a", &"1".repeat(65)] {
            assert!(WhatsAppMedia::parse(bad, "image/jpeg").is_none(), "{bad}");
        }
    }
}
