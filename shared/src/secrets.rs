//! Secrets and the lines at cold start (docs/configuration.md): each is `<NAME>` in the environment
//! (locally, in tests) or, in AWS, `<NAME>_PARAM`, the name of an SSM parameter (a
//! SecureString for the secrets; the lines may be a String). All of a function's `_PARAM`
//! names are read with one `GetParameters` call, once per cold start; values are never
//! logged.

use std::collections::HashMap;

use aws_sdk_ssm::error::DisplayErrorContext;

use crate::config::{ConfigError, Lookup};

/// The variables of the environment contract that may come from SSM: the secrets, and
/// the lines (a deployment's `BRIDGE_LINES` JSON kept in a parameter of its own).
pub const FROM_SSM: [&str; 7] = [
    "TWILIO_AUTH_TOKEN",
    "TWILIO_WEBHOOK_SHARED_KEY",
    "MEDIA_LINK_KEY",
    "META_APP_SECRET",
    "META_ACCESS_TOKEN",
    "META_VERIFY_TOKEN",
    "BRIDGE_LINES",
];

/// The environment with the secrets read from SSM in place of their `_PARAM` names.
pub struct Environment<'a> {
    base: Lookup<'a>,
    from_ssm: HashMap<&'static str, String>,
}

impl Environment<'_> {
    pub fn get(&self, name: &str) -> Option<String> {
        match self.from_ssm.get(name) {
            Some(value) => Some(value.clone()),
            None => (self.base)(name),
        }
    }
}

/// A function's cold start in Lambda, what each `main` calls: its SDK configuration from
/// Lambda's environment ([`crate::aws::lambda_sdk_config`]), then [`cold_start_config`].
/// A failure is logged before it ends the start.
pub async fn lambda_cold_start<C>(
    parse: impl FnOnce(Lookup) -> Result<C, ConfigError>,
) -> Result<(aws_config::SdkConfig, C), ConfigError> {
    let sdk = crate::aws::lambda_sdk_config(&crate::config::process_env)
        .inspect_err(|e| tracing::error!(error = %e, "cold start failed"))?;
    let config = cold_start_config(&sdk, parse).await?;
    Ok((sdk, config))
}

/// A function's configuration at cold start: the secrets named by
/// `<NAME>_PARAM` read from SSM (once), then `parse` over the process environment. A
/// failure is logged before it ends the start.
pub async fn cold_start_config<C>(
    sdk: &aws_config::SdkConfig,
    parse: impl FnOnce(Lookup) -> Result<C, ConfigError>,
) -> Result<C, ConfigError> {
    cold_start_config_from(sdk, &crate::config::process_env, parse).await
}

/// [`cold_start_config`] over `env` instead of the process environment: what a test gives a
/// function's environment file (`events/*.env.json`) to start it as `sam local invoke` does.
pub async fn cold_start_config_from<C>(
    sdk: &aws_config::SdkConfig,
    env: Lookup<'_>,
    parse: impl FnOnce(Lookup) -> Result<C, ConfigError>,
) -> Result<C, ConfigError> {
    let config = match resolve(&aws_sdk_ssm::Client::new(sdk), env).await {
        Ok(env) => parse(&|name| env.get(name)),
        Err(e) => Err(e),
    };
    config.inspect_err(|e| tracing::error!(error = %e, "cold start failed"))
}

/// Reads every secret named by a `<NAME>_PARAM` in `env` from SSM (decrypted). Without any
/// `_PARAM`, no call is made. A secret given both ways, or a parameter that can't be read,
/// fails the cold start naming the variable.
pub async fn resolve<'a>(ssm: &aws_sdk_ssm::Client, env: Lookup<'a>) -> Result<Environment<'a>, ConfigError> {
    let mut wanted: Vec<(&'static str, String)> = Vec::new();
    for name in FROM_SSM {
        let param_var = format!("{name}_PARAM");
        let Some(parameter) = env(&param_var) else { continue };
        if env(name).is_some() {
            return Err(ConfigError::new(&param_var, format!("set either {name} or {param_var}, not both")));
        }
        if !parameter.starts_with('/') && parameter.contains('/') {
            return Err(ConfigError::new(&param_var, "an SSM parameter name with a path starts with /"));
        }
        wanted.push((name, parameter));
    }
    let mut from_ssm = HashMap::new();
    if wanted.is_empty() {
        return Ok(Environment { base: env, from_ssm });
    }
    let names: Vec<String> = wanted.iter().map(|(_, parameter)| parameter.clone()).collect();
    let first_var = format!("{}_PARAM", wanted[0].0);
    let answer =
        ssm.get_parameters().set_names(Some(names)).with_decryption(true).send().await.map_err(|e| {
            ConfigError::new(&first_var, format!("can't read SSM parameters: {}", DisplayErrorContext(&e)))
        })?;
    let found: HashMap<&str, &str> = answer.parameters().iter().filter_map(|p| Some((p.name()?, p.value()?))).collect();
    for (name, parameter) in wanted {
        match found.get(parameter.as_str()) {
            Some(value) if !value.trim().is_empty() => {
                from_ssm.insert(name, value.trim().to_owned());
            }
            Some(_) => {
                return Err(ConfigError::new(&format!("{name}_PARAM"), format!("SSM parameter {parameter} is empty")));
            }
            None => {
                return Err(ConfigError::new(&format!("{name}_PARAM"), format!("SSM parameter {parameter} not found")));
            }
        }
    }
    Ok(Environment { base: env, from_ssm })
}
