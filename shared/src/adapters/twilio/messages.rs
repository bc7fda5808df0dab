//! Twilio's Messages API: the SMS provider port's first adapter (docs/using.md).
//! `POST {base}/2010-04-01/Accounts/{sid}/Messages.json`, form-encoded, Basic auth.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::domain::{DeliveryStatus, E164, ProviderFailure, SmsOrigin};
use crate::ports::{AcceptedSms, SentLookup, SmsProvider, SmsTracking};

pub struct TwilioClient {
    http: reqwest::Client,
    messages_url: String,
    account_sid: String,
    auth_token: SecretString,
}

impl TwilioClient {
    pub fn new(http: reqwest::Client, api_base: &str, account_sid: &str, auth_token: SecretString) -> Self {
        Self {
            http,
            messages_url: format!("{}/2010-04-01/Accounts/{account_sid}/Messages.json", api_base.trim_end_matches('/')),
            account_sid: account_sid.to_owned(),
            auth_token,
        }
    }

    /// Opens the connection to the Messages API during a cold start: an unauthenticated
    /// `GET` of the API's index, kept in the client's pool for the first send.
    pub async fn warm_up(&self) -> Result<(), reqwest::Error> {
        let index = self.messages_url.split("/2010-04-01/").next().unwrap_or(&self.messages_url);
        self.http.get(format!("{index}/2010-04-01.json")).send().await.map(|_| ())
    }
}

#[derive(Deserialize)]
struct MessageResource {
    sid: String,
    #[serde(default)]
    status: Option<String>,
}

/// A page of the Messages list (`GET …/Messages.json?To=&From=&PageSize=`).
#[derive(Deserialize)]
struct MessagePage {
    #[serde(default)]
    messages: Vec<ListedMessage>,
}

#[derive(Deserialize)]
struct ListedMessage {
    sid: String,
    #[serde(default)]
    body: Option<String>,
    /// RFC 2822, GMT: `Sat, 05 Dec 2026 10:00:00 +0000`.
    #[serde(default)]
    date_created: Option<String>,
    #[serde(default)]
    status: Option<String>,
}

/// Messages listed newest first; one page reaches back far enough for the minutes a
/// reconciliation looks at.
const LIST_PAGE_SIZE: &str = "50";
/// Twilio's clock and ours may differ a little.
const CLOCK_SLACK: jiff::SignedDuration = jiff::SignedDuration::from_secs(60);

#[derive(Deserialize)]
struct ErrorResource {
    code: Option<i64>,
    #[serde(default)]
    message: String,
}

impl SmsProvider for TwilioClient {
    async fn send(
        &self,
        from: SmsOrigin<'_>,
        to: &E164,
        body: &str,
        media_urls: &[String],
        tracking: Option<SmsTracking<'_>>,
    ) -> Result<AcceptedSms, ProviderFailure> {
        let mut form = vec![("To", to.as_str()), ("From", from.number.as_str())];
        // Twilio takes Body, MediaUrl or both; an empty Body beside media would be sent as text.
        if !body.is_empty() || media_urls.is_empty() {
            form.push(("Body", body));
        }
        form.extend(media_urls.iter().map(|url| ("MediaUrl", url.as_str())));
        if let Some(tracking) = tracking {
            form.push(("StatusCallback", tracking.status_callback));
        }
        let response = self
            .http
            .post(&self.messages_url)
            .basic_auth(&self.account_sid, Some(self.auth_token.expose_secret()))
            .form(&form)
            .send()
            .await
            .map_err(crate::adapters::request_failure)?;
        let status = response.status();
        let retry_after = crate::adapters::retry_after(response.headers());
        // A refusal whose body is cut off is still a refusal; a success's is ambiguous.
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes,
            Err(_) if !status.is_success() => Default::default(),
            Err(e) => return Err(crate::adapters::request_failure(e)),
        };
        if status.is_success() {
            // Accepted, but unreadable: the message may exist; the worker asks before resending.
            let message: MessageResource = serde_json::from_slice(&bytes).map_err(|e| {
                ProviderFailure::Ambiguous(format!("HTTP {} with an unreadable answer: {e}", status.as_u16()))
            })?;
            return Ok(AcceptedSms {
                id: message.sid,
                status: message.status.as_deref().and_then(DeliveryStatus::parse),
            });
        }
        let (code, message) = match serde_json::from_slice::<ErrorResource>(&bytes) {
            Ok(error) => (error.code, error.message),
            Err(_) => (None, String::from_utf8_lossy(&bytes).chars().take(200).collect()),
        };
        // Providers quote the number they refused (Twilio 21211, 21612...): never log it.
        let message = crate::domain::scrub_numbers(&message);
        Err(ProviderFailure::Rejected { http_status: status.as_u16(), code, message, retry_after })
    }

    /// The Messages list filtered by `To` and `From` (Twilio API reference, "Message
    /// resource", Read multiple: `To`, `From`, `DateSent` by day only, `PageSize`; checked
    /// 2026-12-05), then by body and creation time here: a message still `queued` has no
    /// `DateSent` yet, so that filter would miss exactly the ones we look for.
    async fn find_sent(
        &self,
        from: SmsOrigin<'_>,
        to: &E164,
        body: &str,
        since: jiff::Timestamp,
    ) -> Result<SentLookup, ProviderFailure> {
        let url = reqwest::Url::parse_with_params(
            &self.messages_url,
            [("To", to.as_str()), ("From", from.number.as_str()), ("PageSize", LIST_PAGE_SIZE)],
        )
        .map_err(|e| ProviderFailure::NotSent(format!("message list URL: {e}")))?;
        let response = self
            .http
            .get(url)
            .basic_auth(&self.account_sid, Some(self.auth_token.expose_secret()))
            .send()
            .await
            // A read: whatever happened to it, nothing was sent.
            .map_err(|e| ProviderFailure::NotSent(crate::adapters::request_failure(e).to_string()))?;
        let status = response.status();
        let retry_after = crate::adapters::retry_after(response.headers());
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ProviderFailure::NotSent(crate::adapters::request_failure(e).to_string()))?;
        if !status.is_success() {
            let (code, message) = match serde_json::from_slice::<ErrorResource>(&bytes) {
                Ok(error) => (error.code, error.message),
                Err(_) => (None, String::from_utf8_lossy(&bytes).chars().take(200).collect()),
            };
            let message = crate::domain::scrub_numbers(&message);
            return Err(ProviderFailure::Rejected { http_status: status.as_u16(), code, message, retry_after });
        }
        let page: MessagePage = serde_json::from_slice(&bytes)
            .map_err(|e| ProviderFailure::NotSent(format!("unreadable message list: {e}")))?;
        Ok(SentLookup::Listed(
            page.messages
                .into_iter()
                .filter(|m| m.body.as_deref().unwrap_or_default() == body)
                .filter(|m| {
                    m.date_created
                        .as_deref()
                        .and_then(|d| jiff::fmt::rfc2822::parse(d).ok())
                        .is_some_and(|created| created.timestamp() >= since - CLOCK_SLACK)
                })
                .map(|m| AcceptedSms { id: m.sid, status: m.status.as_deref().and_then(DeliveryStatus::parse) })
                .collect(),
        ))
    }
}
