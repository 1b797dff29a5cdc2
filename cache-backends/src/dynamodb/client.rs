//! The SDK client of one tier: made on first use (building a manager never connects nor
//! resolves credentials), on the backend runtime, with the table created first when
//! `auto_create` is on.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableStatus,
    TimeToLiveSpecification,
};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use cache_core::{TierError, TierErrorKind};

use super::error::tier_error;
use super::item::{EXPIRES_AT, PK, SK};
use super::options::DynamoOptions;
use crate::background;

/// How long `auto_create` waits for a new table to become active.
const CREATE_DEADLINE: Duration = Duration::from_secs(60);
/// How many attempts the SDK makes per operation (one retry), and its first back-off: a
/// cache falls back to the function rather than wait long for its L2.
const MAX_ATTEMPTS: u32 = 2;
const INITIAL_BACKOFF: Duration = Duration::from_millis(20);

/// An endpoint URL without its credentials, if it has any (`http://user:***@host`).
pub(crate) fn redact_endpoint(url: &str) -> String {
    cache_core::redact::redact_url(url)
}

/// The lazily made SDK client of a tier, and what every operation needs to know.
pub(crate) struct Client {
    pub(crate) opts: DynamoOptions,
    sdk: tokio::sync::OnceCell<aws_sdk_dynamodb::Client>,
    target: String,
}

impl Client {
    pub(crate) fn new(opts: DynamoOptions) -> Arc<Self> {
        let place = match (&opts.endpoint, &opts.region) {
            (Some(endpoint), Some(region)) => {
                format!(" at {} ({region})", redact_endpoint(endpoint))
            }
            (Some(endpoint), None) => format!(" at {}", redact_endpoint(endpoint)),
            (None, Some(region)) => format!(" in {region}"),
            (None, None) => String::new(),
        };
        Arc::new(Self {
            target: format!("table {}{place}", opts.table),
            opts,
            sdk: tokio::sync::OnceCell::new(),
        })
    }

    /// `table cachet at http://127.0.0.1:8000 (eu-west-1)`: never a credential.
    pub(crate) fn target(&self) -> &str {
        &self.target
    }

    pub(crate) fn table(&self) -> &str {
        &self.opts.table
    }

    /// What error messages must never show.
    pub(crate) fn secrets(&self) -> [&str; 2] {
        match &self.opts.credentials {
            Some(c) => [&c.access_key_id, &c.secret_access_key],
            None => ["", ""],
        }
    }

    /// Maps an SDK error of operation `op`.
    pub(crate) fn fault<E>(
        &self,
        op: &str,
        err: &aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
    ) -> TierError
    where
        E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        tier_error(op, err, &self.secrets())
    }

    /// The answer of a conditional request (`op`): `true` when it was applied, `false` when
    /// its condition refused it (an answer, not a fault), or the fault.
    pub(crate) fn conditional<T, E>(
        &self,
        op: &str,
        result: Result<
            T,
            aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
        >,
    ) -> Result<bool, TierError>
    where
        E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        match result {
            Ok(_) => Ok(true),
            Err(err) if super::error::is_condition_failed(&err) => Ok(false),
            Err(err) => Err(self.fault(op, &err)),
        }
    }

    /// Runs `op` with the SDK client on the backend runtime's context (see
    /// [`crate::background`]): hyper's connection tasks and the SDK's timers live there,
    /// whichever runtime awaits the result.
    pub(crate) fn run<T, F, Fut>(self: &Arc<Self>, op: F) -> background::Remote<'static, T>
    where
        F: FnOnce(Arc<Self>, aws_sdk_dynamodb::Client) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, TierError>> + Send + 'static,
        T: Send + 'static,
    {
        let this = Arc::clone(self);
        background::run(async move {
            let sdk = this.sdk().await?;
            op(this, sdk).await
        })
    }

    /// The SDK client, made on first use; a failure (a table that cannot be created) is
    /// retried by the next operation.
    async fn sdk(&self) -> Result<aws_sdk_dynamodb::Client, TierError> {
        self.sdk.get_or_try_init(|| self.build()).await.cloned()
    }

    async fn build(&self) -> Result<aws_sdk_dynamodb::Client, TierError> {
        let opts = &self.opts;
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let timeouts = TimeoutConfig::builder()
            .operation_timeout(opts.operation_timeout)
            .operation_attempt_timeout(opts.operation_timeout)
            .connect_timeout(opts.connect_timeout)
            .build();
        let retries = RetryConfig::standard()
            .with_max_attempts(MAX_ATTEMPTS)
            .with_initial_backoff(INITIAL_BACKOFF);
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .timeout_config(timeouts)
            .retry_config(retries);
        if let Some(region) = &opts.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(endpoint) = &opts.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        if let Some(c) = &opts.credentials {
            loader = loader.credentials_provider(Credentials::new(
                &c.access_key_id,
                &c.secret_access_key,
                None,
                None,
                "cachet-static",
            ));
        }
        let client = aws_sdk_dynamodb::Client::new(&loader.load().await);
        if opts.auto_create {
            self.ensure_table(&client).await?;
        }
        Ok(client)
    }

    /// Creates the table when it does not exist, waits for it to be active, and turns on
    /// TTL on `expires_at`. An existing table must have cachet's key schema.
    async fn ensure_table(&self, client: &aws_sdk_dynamodb::Client) -> Result<(), TierError> {
        let table = &self.opts.table;
        let described = client.describe_table().table_name(table).send().await;
        match described {
            Ok(out) => {
                let schema = out.table().map(|t| t.key_schema()).unwrap_or_default();
                let names: Vec<(&str, &KeyType)> = schema
                    .iter()
                    .map(|k| (k.attribute_name(), k.key_type()))
                    .collect();
                if names != [(PK, &KeyType::Hash), (SK, &KeyType::Range)] {
                    return Err(TierError::with_kind(
                        format!(
                            "dynamodb: table {table} exists with another key schema than \
                             cachet's (partition key `{PK}`, sort key `{SK}`, both strings)"
                        ),
                        TierErrorKind::Other,
                    ));
                }
            }
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                self.create_table(client).await?;
            }
            Err(err) => return Err(self.fault("DescribeTable", &err)),
        }
        let ttl = TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name(EXPIRES_AT)
            .build()
            .map_err(|e| TierError::with_kind(e.to_string(), TierErrorKind::Other))?;
        match client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(ttl)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // "TimeToLive is already enabled": what we wanted.
            Err(err)
                if aws_sdk_dynamodb::error::ProvideErrorMetadata::code(&err)
                    == Some("ValidationException") =>
            {
                Ok(())
            }
            Err(err) => Err(self.fault("UpdateTimeToLive", &err)),
        }
    }

    async fn create_table(&self, client: &aws_sdk_dynamodb::Client) -> Result<(), TierError> {
        let build = |e: aws_sdk_dynamodb::error::BuildError| {
            TierError::with_kind(e.to_string(), TierErrorKind::Other)
        };
        let table = &self.opts.table;
        let created = client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(PK)
                    .key_type(KeyType::Hash)
                    .build()
                    .map_err(build)?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(SK)
                    .key_type(KeyType::Range)
                    .build()
                    .map_err(build)?,
            )
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(PK)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .map_err(build)?,
            )
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(SK)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .map_err(build)?,
            )
            .send()
            .await;
        match created {
            Ok(_) => {}
            // Another instance created it meanwhile.
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) => {}
            Err(err) => return Err(self.fault("CreateTable", &err)),
        }
        let deadline = tokio::time::Instant::now() + CREATE_DEADLINE;
        let mut pause = Duration::from_millis(50);
        loop {
            let out = client
                .describe_table()
                .table_name(table)
                .send()
                .await
                .map_err(|e| self.fault("DescribeTable", &e))?;
            if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                tracing::info!(table = %table, "cachet: created the DynamoDB table");
                return Ok(());
            }
            if tokio::time::Instant::now() + pause > deadline {
                return Err(TierError::with_kind(
                    format!("dynamodb: table {table} was not active {CREATE_DEADLINE:?} after its creation"),
                    TierErrorKind::Unavailable,
                ));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_lose_their_password() {
        assert_eq!(
            redact_endpoint("http://127.0.0.1:8000"),
            "http://127.0.0.1:8000"
        );
        assert!(!redact_endpoint("https://user:pw@dynamo.local:443/x").contains("pw"));
    }

    #[test]
    fn descriptions_name_the_table_and_where_it_is() {
        let c = Client::new(
            DynamoOptions::new("cachet")
                .region("eu-west-1")
                .endpoint("http://u:p@127.0.0.1:8000")
                .static_credentials("AKID", "SECRET"),
        );
        assert_eq!(
            c.target(),
            "table cachet at http://u:***@127.0.0.1:8000 (eu-west-1)"
        );
        assert_eq!(c.secrets(), ["AKID", "SECRET"]);
    }
}
