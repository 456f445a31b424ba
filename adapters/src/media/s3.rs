//! Production: media as objects in an S3 bucket (or anything speaking the S3
//! API), read by clients through short-lived presigned GET addresses.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use aws_sdk_s3::Client;
use domain::ports::{MediaError, MediaLocation, MediaStore};
use secrecy::SecretString;

use super::{validate_content_type, validate_key};
use crate::aws::AwsConnection;

/// The longest a presigned address may stay valid (SigV4's limit).
const MAX_PRESIGN_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// Where the bucket is and how to reach it. `Debug` never shows the secret.
#[derive(Clone, Debug)]
pub struct S3Settings {
    pub bucket: String,
    pub region: String,
    /// Another S3 endpoint, such as `http://127.0.0.1:PORT` for a local
    /// `moto_server` or an S3-compatible store; `None` for AWS.
    pub endpoint: Option<String>,
    /// Static credentials, given together or not at all; without them the
    /// usual AWS chain applies (environment, profile, web identity, ECS or
    /// instance metadata).
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<SecretString>,
    /// `http://host/bucket/key` instead of `http://bucket.host/key`; needed
    /// for most endpoints other than AWS.
    pub force_path_style: bool,
    /// How long a presigned GET stays valid (at most 7 days).
    pub presign_ttl: Duration,
}

/// Stores media in one S3 bucket: `put` is a PutObject with the content
/// type, `fetch` answers a presigned GET for an object that exists, `delete`
/// is a DeleteObject (which S3 makes idempotent).
#[derive(Clone)]
pub struct S3MediaStore {
    client: Client,
    bucket: String,
    region: String,
    endpoint: Option<String>,
    presign_ttl: Duration,
}

impl fmt::Debug for S3MediaStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3MediaStore")
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("presign_ttl", &self.presign_ttl)
            .finish_non_exhaustive()
    }
}

fn backend(what: &str, e: impl fmt::Display) -> MediaError {
    MediaError::Backend(format!("{what}: {e}"))
}

fn sdk_error<E, R>(what: &str, e: SdkError<E, R>) -> MediaError
where
    E: std::error::Error + 'static,
    R: fmt::Debug,
{
    backend(what, DisplayErrorContext(e))
}

impl S3MediaStore {
    /// Builds the client. Nothing is sent to S3 yet: a wrong bucket or
    /// credentials show on the first request (or on [`Self::ensure_bucket`]).
    pub async fn new(settings: S3Settings) -> Result<Self, MediaError> {
        if settings.bucket.is_empty() {
            return Err(backend("S3 settings", "the bucket name is empty"));
        }
        if settings.region.is_empty() {
            return Err(backend("S3 settings", "the region is empty"));
        }
        if settings.presign_ttl.is_zero() || settings.presign_ttl > MAX_PRESIGN_TTL {
            return Err(backend(
                "S3 settings",
                format!(
                    "the presigned address lifetime must be between 1 second and 7 days, not {:?}",
                    settings.presign_ttl
                ),
            ));
        }

        let shared = AwsConnection {
            region: settings.region.clone(),
            endpoint: settings.endpoint.clone(),
            access_key_id: settings.access_key_id,
            secret_access_key: settings.secret_access_key,
        }
        .sdk_config()
        .await
        .map_err(|e| backend("S3 settings", e))?;
        let config = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(settings.force_path_style)
            .build();
        Ok(Self {
            client: Client::from_conf(config),
            bucket: settings.bucket,
            region: settings.region,
            endpoint: settings.endpoint,
            presign_ttl: settings.presign_ttl,
        })
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Creates the bucket unless it exists already (and is ours to use).
    pub async fn ensure_bucket(&self) -> Result<(), MediaError> {
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => return Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().is_not_found() => {}
            Err(e) => {
                return Err(sdk_error(
                    &format!("checking the bucket {:?}", self.bucket),
                    e,
                ))
            }
        }
        let mut create = self.client.create_bucket().bucket(&self.bucket);
        // us-east-1 is the one region that takes no location constraint.
        if self.region != "us-east-1" {
            create = create.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(self.region.as_str()))
                    .build(),
            );
        }
        match create.send().await {
            Ok(_) => {
                tracing::info!(bucket = %self.bucket, "created the media bucket");
                Ok(())
            }
            // Created meanwhile by another instance.
            Err(SdkError::ServiceError(e)) if e.err().is_bucket_already_owned_by_you() => Ok(()),
            Err(e) => Err(sdk_error(
                &format!("creating the bucket {:?}", self.bucket),
                e,
            )),
        }
    }
}

#[async_trait]
impl MediaStore for S3MediaStore {
    fn name(&self) -> &'static str {
        "s3"
    }

    async fn put(&self, key: &str, content_type: &str, bytes: Vec<u8>) -> Result<(), MediaError> {
        validate_key(key)?;
        validate_content_type(content_type)?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| sdk_error(&format!("storing {key:?} in {:?}", self.bucket), e))?;
        Ok(())
    }

    async fn fetch(&self, key: &str) -> Result<Option<MediaLocation>, MediaError> {
        validate_key(key)?;
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => {}
            Err(SdkError::ServiceError(e)) if e.err().is_not_found() => return Ok(None),
            Err(e) => {
                return Err(sdk_error(
                    &format!("looking up {key:?} in {:?}", self.bucket),
                    e,
                ))
            }
        }
        let presigning = PresigningConfig::expires_in(self.presign_ttl)
            .map_err(|e| backend("presigning settings", e))?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(presigning)
            .await
            .map_err(|e| sdk_error(&format!("presigning {key:?} in {:?}", self.bucket), e))?;
        Ok(Some(MediaLocation::Redirect(request.uri().to_owned())))
    }

    async fn delete(&self, key: &str) -> Result<(), MediaError> {
        validate_key(key)?;
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| sdk_error(&format!("deleting {key:?} from {:?}", self.bucket), e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> S3Settings {
        S3Settings {
            bucket: "marketplace-media".into(),
            region: "eu-west-1".into(),
            endpoint: Some("http://127.0.0.1:9".into()),
            access_key_id: Some("AKIAEXAMPLE".into()),
            secret_access_key: Some("wJalrXUtnFEMI-very-secret".to_owned().into()),
            force_path_style: true,
            presign_ttl: Duration::from_secs(300),
        }
    }

    #[tokio::test]
    async fn debug_hides_the_secret() {
        let settings = settings();
        let debug = format!("{settings:?}");
        assert!(!debug.contains("very-secret"), "{debug}");
        assert!(debug.contains("AKIAEXAMPLE"), "{debug}");
        let store = S3MediaStore::new(settings).await.unwrap();
        let debug = format!("{store:?}");
        assert!(!debug.contains("very-secret"), "{debug}");
        assert!(debug.contains("marketplace-media"), "{debug}");
    }

    #[tokio::test]
    async fn half_given_credentials_are_refused() {
        let err = S3MediaStore::new(S3Settings {
            secret_access_key: None,
            ..settings()
        })
        .await
        .unwrap_err();
        assert!(err.to_string().contains("together"), "{err}");
    }

    #[tokio::test]
    async fn presign_lifetime_is_bounded() {
        for ttl in [Duration::ZERO, MAX_PRESIGN_TTL + Duration::from_secs(1)] {
            let err = S3MediaStore::new(S3Settings {
                presign_ttl: ttl,
                ..settings()
            })
            .await
            .unwrap_err();
            assert!(err.to_string().contains("7 days"), "{err}");
        }
    }

    #[tokio::test]
    async fn bad_keys_are_refused_before_any_request() {
        // Nothing listens on port 9: a request would fail as Backend.
        let store = S3MediaStore::new(settings()).await.unwrap();
        for key in ["../a", "/a", "A.png", ""] {
            assert!(
                matches!(store.fetch(key).await, Err(MediaError::Rejected(_))),
                "{key}"
            );
            assert!(
                matches!(store.delete(key).await, Err(MediaError::Rejected(_))),
                "{key}"
            );
            assert!(
                matches!(
                    store.put(key, "image/png", vec![1]).await,
                    Err(MediaError::Rejected(_))
                ),
                "{key}"
            );
        }
    }
}
