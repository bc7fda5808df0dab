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

    /// Fetches the account the worker sends with, with its credentials
    /// (`GET /2010-04-01/Accounts/{AccountSid}.json`; Twilio, "REST API: Accounts", Fetch an
    /// Account resource, read 2026-12-06): whether the auth token works and the account is
    /// active, without texting anyone.
    pub async fn fetch_account(&self) -> Result<AccountStatus, ProviderFailure> {
        let account_url = match self.messages_url.strip_suffix("/Messages.json") {
            Some(account) => format!("{account}.json"),
            None => return Err(ProviderFailure::NotSent("no account URL".into())),
        };
        let response = self
            .http
            .get(account_url)
            .basic_auth(&self.account_sid, Some(self.auth_token.expose_secret()))
            .send()
            .await
            // A read: whatever happened to it, nothing was sent.
            .map_err(|e| ProviderFailure::NotSent(crate::adapters::request_failure(e).to_string()))?;
        let status = response.status();
        let retry_after = crate::adapters::retry_after(response.headers());
        let bytes = response.bytes().await.unwrap_or_default();
        if !status.is_success() {
            return Err(rejected(status.as_u16(), &bytes, retry_after));
        }
        let account: AccountResource =
            serde_json::from_slice(&bytes).map_err(|e| ProviderFailure::NotSent(format!("unreadable account: {e}")))?;
        Ok(account.status)
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

/// An account's `status` (Twilio, "REST API: Accounts", read 2026-12-06).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountStatus {
    Active,
    /// Suspended (a balance at zero, a policy review): nothing is sent until it is active.
    Suspended,
    Closed,
}

/// The fields of the Account resource read here. The resource also carries the auth token:
/// nothing else of it is kept, and it is never shown.
#[derive(Deserialize)]
struct AccountResource {
    status: AccountStatus,
}

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
        Err(rejected(status.as_u16(), &bytes, retry_after))
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
            return Err(rejected(status.as_u16(), &bytes, retry_after));
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

/// A refusal as Twilio words it: its error code, and its message without numbers.
fn rejected(http_status: u16, bytes: &[u8], retry_after: Option<std::time::Duration>) -> ProviderFailure {
    let (code, message) = match serde_json::from_slice::<ErrorResource>(bytes) {
        Ok(error) => (error.code, error.message),
        Err(_) => (None, String::from_utf8_lossy(bytes).chars().take(200).collect()),
    };
    // Providers quote the number they refused (Twilio 21211, 21612...): never log it.
    let message = crate::domain::scrub_numbers(&message);
    ProviderFailure::Rejected { http_status, code, message, retry_after }
}
