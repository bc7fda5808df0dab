//! The lines' SSM parameter read again by a running function (`ports::LinesParameter`,
//! `app::live_lines`). One `GetParameter` (decrypted: the parameter may be a SecureString),
//! whose answer carries the parameter's version (SSM API reference, GetParameter, read
//! 2026-12-06: `Parameter.Version`). The value is never logged.

use aws_sdk_ssm::error::{DisplayErrorContext, ProvideErrorMetadata};

use crate::domain::scrub_numbers;
use crate::ports::{LinesDocument, LinesParameter, LinesParameterError, LinesRead};

pub struct SsmLinesParameter {
    ssm: aws_sdk_ssm::Client,
    name: String,
}

impl SsmLinesParameter {
    pub fn new(ssm: aws_sdk_ssm::Client, name: impl Into<String>) -> Self {
        Self { ssm, name: name.into() }
    }
}

impl LinesParameter for SsmLinesParameter {
    fn read(&self) -> LinesRead<'_> {
        Box::pin(async move {
            let answer = self.ssm.get_parameter().name(&self.name).with_decryption(true).send().await.map_err(|e| {
                if e.as_service_error().is_some_and(|e| e.is_parameter_not_found()) {
                    LinesParameterError::NotFound
                } else {
                    let code = e.code().unwrap_or("no error code").to_owned();
                    LinesParameterError::Unavailable(format!(
                        "{code}: {}",
                        scrub_numbers(&DisplayErrorContext(&e).to_string())
                    ))
                }
            })?;
            let parameter = answer.parameter.ok_or_else(|| {
                LinesParameterError::Unavailable("GetParameter answered without the parameter".into())
            })?;
            Ok(LinesDocument { json: parameter.value.unwrap_or_default(), version: parameter.version })
        })
    }
}
