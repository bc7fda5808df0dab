//! Fetches relayed media from the provider that holds it (docs/media.md), for the SMS
//! webhook's `GET /media/...`: a customer's MMS part from Twilio (Basic auth), an agent's
//! WhatsApp media from the Graph API (its URL first, then the file; Bearer token).
//!
//! Credentials go only to the provider's own hosts, checked on the URL before the request,
//! and reqwest drops the `Authorization` header on a redirect to another host (Twilio's
//! media redirects to a signed storage URL), which the tests prove.

use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::domain::media::{MediaSource, WhatsAppMedia, host_allowed};

/// The most the bridge relays in one piece: Twilio's MMS limit, and under a Lambda
/// response's 6 MB once API Gateway base64-encodes it.
pub const MAX_MEDIA_BYTES: usize = 4 * 1024 * 1024;

const TWILIO_HOSTS: [&str; 1] = ["api.twilio.com"];
const TWILIO_DOMAINS: [&str; 1] = ["twilio.com"];
const META_HOSTS: [&str; 1] = ["graph.facebook.com"];
const META_DOMAINS: [&str; 4] = ["fbsbx.com", "facebook.com", "whatsapp.net", "fbcdn.net"];

#[derive(Debug)]
pub struct FetchedMedia {
    pub content_type: String,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaFetchError {
    /// The reference points outside the provider: nothing was requested.
    #[error("media is not on the provider's hosts")]
    ForeignHost,
    #[error("the provider has no such media")]
    NotFound,
    #[error("media is larger than {MAX_MEDIA_BYTES} bytes")]
    TooLarge,
    #[error("media relay from {0} is not configured")]
    NotConfigured(&'static str),
    #[error("the provider failed: {0}")]
    Upstream(String),
}

pub struct TwilioMediaAccess {
    pub account_sid: String,
    pub auth_token: SecretString,
    /// `TWILIO_API_BASE`: its host is trusted too (a local simulator in tests).
    pub api_base: String,
}

pub struct GraphMediaAccess {
    pub access_token: SecretString,
    /// `GRAPH_API_BASE` and `GRAPH_API_VERSION`.
    pub api_base: String,
    pub api_version: String,
}

pub struct MediaFetcher {
    http: crate::aws::LazyHttpClient,
    twilio: Option<TwilioMediaAccess>,
    graph: Option<GraphMediaAccess>,
}

#[derive(Deserialize)]
struct GraphMediaObject {
    url: String,
}

impl MediaFetcher {
    pub fn new(
        http: crate::aws::LazyHttpClient,
        twilio: Option<TwilioMediaAccess>,
        graph: Option<GraphMediaAccess>,
    ) -> Self {
        Self { http, twilio, graph }
    }

    pub async fn fetch(&self, source: MediaSource, reference: &str) -> Result<FetchedMedia, MediaFetchError> {
        match source {
            MediaSource::Sms => self.fetch_from_twilio(reference).await,
            MediaSource::WhatsApp => self.fetch_from_graph(reference).await,
        }
    }

    async fn fetch_from_twilio(&self, reference: &str) -> Result<FetchedMedia, MediaFetchError> {
        let access = self.twilio.as_ref().ok_or(MediaFetchError::NotConfigured("twilio"))?;
        let url = trusted_url(reference, &access.api_base, &TWILIO_HOSTS, &TWILIO_DOMAINS)?;
        let request =
            self.http.client().get(url).basic_auth(&access.account_sid, Some(access.auth_token.expose_secret()));
        download(request).await
    }

    async fn fetch_from_graph(&self, media_id: &str) -> Result<FetchedMedia, MediaFetchError> {
        let access = self.graph.as_ref().ok_or(MediaFetchError::NotConfigured("whatsapp"))?;
        let media = WhatsAppMedia::parse(media_id, "").ok_or(MediaFetchError::NotFound)?;
        let lookup = format!("{}/{}/{}", access.api_base.trim_end_matches('/'), access.api_version, media.id);
        let response = self
            .http
            .client()
            .get(&lookup)
            .bearer_auth(access.access_token.expose_secret())
            .send()
            .await
            .map_err(|e| MediaFetchError::Upstream(without_url(&e)))?;
        let response = checked(response)?;
        let object: GraphMediaObject =
            response.json().await.map_err(|e| MediaFetchError::Upstream(format!("unreadable media object: {e}")))?;
        let url = trusted_url(&object.url, &access.api_base, &META_HOSTS, &META_DOMAINS)?;
        download(self.http.client().get(url).bearer_auth(access.access_token.expose_secret())).await
    }
}

/// `reference` as a URL on the provider's hosts (https; plain http only for the configured
/// base's own host, e.g. a local simulator).
fn trusted_url(
    reference: &str,
    configured_base: &str,
    hosts: &[&str],
    domains: &[&str],
) -> Result<Url, MediaFetchError> {
    let url = Url::parse(reference).map_err(|_| MediaFetchError::ForeignHost)?;
    let configured = Url::parse(configured_base).ok();
    let same_as_configured = configured.as_ref().is_some_and(|base| {
        base.host_str() == url.host_str() && base.port_or_known_default() == url.port_or_known_default()
    });
    let host = url.host_str().unwrap_or_default();
    let trusted = same_as_configured || (url.scheme() == "https" && host_allowed(host, hosts, domains));
    if trusted && url.username().is_empty() && url.password().is_none() {
        Ok(url)
    } else {
        Err(MediaFetchError::ForeignHost)
    }
}

fn checked(response: reqwest::Response) -> Result<reqwest::Response, MediaFetchError> {
    match response.status() {
        status if status.is_success() => Ok(response),
        reqwest::StatusCode::NOT_FOUND | reqwest::StatusCode::GONE => Err(MediaFetchError::NotFound),
        status => Err(MediaFetchError::Upstream(format!("HTTP {status}"))),
    }
}

async fn download(request: reqwest::RequestBuilder) -> Result<FetchedMedia, MediaFetchError> {
    let response = request.send().await.map_err(|e| MediaFetchError::Upstream(without_url(&e)))?;
    let mut response = checked(response)?;
    if response.content_length().is_some_and(|n| n > MAX_MEDIA_BYTES as u64) {
        return Err(MediaFetchError::TooLarge);
    }
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| MediaFetchError::Upstream(without_url(&e)))? {
        if bytes.len() + chunk.len() > MAX_MEDIA_BYTES {
            return Err(MediaFetchError::TooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(FetchedMedia { content_type, bytes })
}

/// reqwest's errors print the URL, which may be a signed storage URL: keep it out of logs.
fn without_url(e: &reqwest::Error) -> String {
    let text = e.to_string();
    match e.url() {
        Some(url) => text.replace(url.as_str(), "<media url>"),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_provider_hosts_or_the_configured_base_are_trusted() {
        let base = "https://api.twilio.com";
        let ok =
            ["https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1", "https://media.twilio.com/ME1"];
        for url in ok {
            assert!(trusted_url(url, base, &TWILIO_HOSTS, &TWILIO_DOMAINS).is_ok(), "{url}");
        }
        let bad = [
            "http://api.twilio.com/insecure",
            "https://api.twilio.com.evil.example/x",
            "https://evil.example/?api.twilio.com",
            "https://user:pw@api.twilio.com/x",
            "ftp://api.twilio.com/x",
            "not a url",
            "https://169.254.169.254/latest/meta-data/",
        ];
        for url in bad {
            assert_eq!(
                trusted_url(url, base, &TWILIO_HOSTS, &TWILIO_DOMAINS).err(),
                Some(MediaFetchError::ForeignHost),
                "{url}"
            );
        }
        // A local simulator is trusted on its exact host and port only.
        let local = "http://127.0.0.1:8080";
        assert!(trusted_url("http://127.0.0.1:8080/media/1", local, &TWILIO_HOSTS, &TWILIO_DOMAINS).is_ok());
        assert!(trusted_url("http://127.0.0.1:9999/media/1", local, &TWILIO_HOSTS, &TWILIO_DOMAINS).is_err());
        let meta = "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1";
        assert!(trusted_url(meta, "https://graph.facebook.com", &META_HOSTS, &META_DOMAINS).is_ok());
    }
}
