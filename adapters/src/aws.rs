//! What every AWS client here shares: the region, another endpoint (a local
//! `moto_server`, an S3-compatible store), static credentials or the default
//! chain, HTTPS on rustls with ring, and bounded timeouts.

use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};
// The same types for every service client; S3's re-exports name them.
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{Credentials, Region};
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use secrecy::{ExposeSecret, SecretString};

/// How to reach an AWS service. `Debug` never shows the secret.
#[derive(Clone, Debug)]
pub struct AwsConnection {
    pub region: String,
    /// Another endpoint, such as `http://127.0.0.1:PORT` for a local
    /// `moto_server`; `None` for AWS.
    pub endpoint: Option<String>,
    /// Static credentials, given together or not at all; without them the
    /// usual AWS chain applies (environment, profile, web identity, ECS or
    /// instance metadata).
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<SecretString>,
}

impl AwsConnection {
    /// The shared SDK configuration each service's client is built from.
    /// Nothing is sent yet. `Err` says which setting is wrong.
    pub(crate) async fn sdk_config(&self) -> Result<SdkConfig, String> {
        if self.region.is_empty() {
            return Err("the region is empty".into());
        }
        let http_client = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            .operation_attempt_timeout(Duration::from_secs(60))
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(self.region.clone()))
            .http_client(http_client)
            .timeout_config(timeouts);
        match (&self.access_key_id, &self.secret_access_key) {
            (Some(id), Some(secret)) => {
                loader = loader.credentials_provider(Credentials::new(
                    id.clone(),
                    secret.expose_secret().to_owned(),
                    None,
                    None,
                    "marketplace-settings",
                ));
            }
            (None, None) => {}
            _ => return Err("the access key id and the secret access key go together".into()),
        }
        if let Some(endpoint) = &self.endpoint {
            loader = loader.endpoint_url(endpoint.clone());
        }
        Ok(loader.load().await)
    }
}
