//! Twilio's Messages API: the SMS provider port's first adapter (SPEC §6).
//! `POST {base}/2010-04-01/Accounts/{sid}/Messages.json`, form-encoded, Basic auth.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::domain::{DeliveryStatus, E164, ProviderFailure};
use crate::ports::{AcceptedSms, SmsProvider};

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

#[derive(Deserialize)]
struct ErrorResource {
    code: Option<i64>,
    #[serde(default)]
    message: String,
}

impl SmsProvider for TwilioClient {
    async fn send(
        &self,
        from: &E164,
        to: &E164,
        body: &str,
        media_urls: &[String],
        status_callback: Option<&str>,
    ) -> Result<AcceptedSms, ProviderFailure> {
        let mut form = vec![("To", to.as_str()), ("From", from.as_str())];
        // Twilio takes Body, MediaUrl or both; an empty Body beside media would be sent as text.
        if !body.is_empty() || media_urls.is_empty() {
            form.push(("Body", body));
        }
        form.extend(media_urls.iter().map(|url| ("MediaUrl", url.as_str())));
        if let Some(callback) = status_callback {
            form.push(("StatusCallback", callback));
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
        let bytes = response.bytes().await.map_err(crate::adapters::request_failure)?;
        if status.is_success() {
            let message: MessageResource = serde_json::from_slice(&bytes).map_err(|e| ProviderFailure::Rejected {
                // Accepted, but unreadable: the message may exist; retrying risks a double.
                http_status: 502,
                code: None,
                message: format!("unreadable answer: {e}"),
                retry_after: None,
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
        Err(ProviderFailure::Rejected { http_status: status.as_u16(), code, message, retry_after })
    }
}
