//! The SMS provider of each line (docs/configuration.md, `sms_provider`): the worker holds one
//! client per provider in use and sends each text through its line's.

use crate::adapters::aws_sms::AwsSmsClient;
use crate::adapters::twilio::TwilioClient;
use crate::domain::{E164, ProviderFailure, SmsOrigin, SmsSender};
use crate::ports::{AcceptedSms, SentLookup, SmsProvider, SmsTracking};

pub struct LineSmsProviders {
    /// Built only when the deployment has a Twilio account (a line used Twilio at the cold start,
    /// or the account was given anyway).
    pub twilio: Option<TwilioClient>,
    /// Built only when a line sends through AWS End User Messaging SMS.
    pub aws: Option<AwsSmsClient>,
}

impl LineSmsProviders {
    /// Opens Twilio's connection during the cold start (AWS's opens with the first send).
    pub async fn warm_up(&self) -> Result<(), reqwest::Error> {
        match &self.twilio {
            Some(twilio) => twilio.warm_up().await,
            None => Ok(()),
        }
    }

    fn twilio(&self) -> Result<&TwilioClient, ProviderFailure> {
        // The configuration requires the Twilio account when a line uses Twilio at the cold
        // start; a line switched to Twilio later by the lines' parameter, in a deployment
        // without one, lands here: an operator must look.
        self.twilio.as_ref().ok_or_else(|| ProviderFailure::Rejected {
            http_status: 401,
            code: None,
            message: "no Twilio client: the worker was started without TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN".into(),
            retry_after: None,
        })
    }

    fn aws(&self) -> Result<&AwsSmsClient, ProviderFailure> {
        // The configuration requires AWS_SMS_CONFIGURATION_SET when a line uses AWS at the
        // cold start; a line switched to AWS later by the lines' parameter, in a deployment
        // without one, lands here: an operator must look.
        self.aws.as_ref().ok_or_else(|| ProviderFailure::Rejected {
            http_status: 403,
            code: None,
            message: "no AWS SMS client: the worker was started without AWS_SMS_CONFIGURATION_SET".into(),
            retry_after: None,
        })
    }
}

impl SmsProvider for LineSmsProviders {
    async fn send(
        &self,
        from: SmsOrigin<'_>,
        to: &E164,
        body: &str,
        media_urls: &[String],
        tracking: Option<SmsTracking<'_>>,
    ) -> Result<AcceptedSms, ProviderFailure> {
        match from.provider {
            SmsSender::Twilio => self.twilio()?.send(from, to, body, media_urls, tracking).await,
            SmsSender::AwsEndUserMessaging { .. } => self.aws()?.send(from, to, body, media_urls, tracking).await,
        }
    }

    async fn find_sent(
        &self,
        from: SmsOrigin<'_>,
        to: &E164,
        body: &str,
        since: jiff::Timestamp,
    ) -> Result<SentLookup, ProviderFailure> {
        match from.provider {
            SmsSender::Twilio => self.twilio()?.find_sent(from, to, body, since).await,
            SmsSender::AwsEndUserMessaging { .. } => self.aws()?.find_sent(from, to, body, since).await,
        }
    }
}
