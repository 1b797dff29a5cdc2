//! The L2 driver conformance suite (`cachet::testing::conformance`) on the DynamoDB tier,
//! against a DynamoDB emulator (moto) started by the harness on a loopback port, with
//! static test credentials: nothing reaches for the default AWS chain.
#![cfg(feature = "dynamodb")]
#![allow(clippy::unwrap_used)]

#[path = "../../tests/support/dynamodb_server.rs"]
mod dynamodb_server;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::AttributeValue;
use cache_backends::dynamodb::{item_key_of, DynamoOptions, DynamoTier};
use cache_core::store::{BoxFuture, RemoteTier};
use cache_core::testing::conformance::{self, Capabilities, Expiry, Fixture};
use dynamodb_server::{DynamoServer, TEST_REGION};

const TABLE: &str = "cachet";
const MAX_VALUE_SIZE: usize = 64 * 1024;

struct DynamoFixture {
    tier: Arc<dyn RemoteTier>,
    raw: aws_sdk_dynamodb::Client,
}

impl DynamoFixture {
    fn new(server: &DynamoServer) -> Self {
        let (id, secret) = server.credentials();
        let opts = DynamoOptions::new(TABLE)
            .region(TEST_REGION)
            .endpoint(server.endpoint())
            .static_credentials(id, secret)
            .auto_create(true)
            .operation_timeout(Duration::from_secs(10))
            .max_value_size(MAX_VALUE_SIZE);
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new(TEST_REGION))
            .endpoint_url(server.endpoint())
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                id, secret, None, None, "test",
            ))
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .build();
        Self {
            tier: Arc::new(DynamoTier::new(opts).unwrap()),
            raw: aws_sdk_dynamodb::Client::from_conf(config),
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The expiry an item records (`expires_ms`), as seen now.
fn expiry_in(item: &std::collections::HashMap<String, AttributeValue>) -> Expiry {
    match item.get("expires_ms") {
        Some(AttributeValue::N(ms)) => {
            let at: u64 = ms.parse().unwrap();
            match at.checked_sub(now_ms()) {
                Some(left) if left > 0 => Expiry::In(Duration::from_millis(left)),
                _ => Expiry::Absent,
            }
        }
        _ => Expiry::Never,
    }
}

impl Fixture for DynamoFixture {
    fn tier(&self) -> Arc<dyn RemoteTier> {
        self.tier.clone()
    }

    /// An entry or a lock is one item with its expiry; a tag key has no item of its own
    /// but one row per entry (`{tag's sk}={member}`): the tag "expires" with its last row.
    fn expiry_of<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Expiry> {
        Box::pin(async move {
            let (pk, sk) = item_key_of(key).unwrap();
            let item = self
                .raw
                .get_item()
                .table_name(TABLE)
                .key("pk", AttributeValue::S(pk.clone()))
                .key("sk", AttributeValue::S(sk.clone()))
                .consistent_read(true)
                .send()
                .await
                .unwrap();
            if let Some(item) = item.item() {
                return expiry_in(item);
            }
            let rows = self
                .raw
                .query()
                .table_name(TABLE)
                .key_condition_expression("pk = :pk AND begins_with(sk, :rows)")
                .expression_attribute_values(":pk", AttributeValue::S(pk))
                .expression_attribute_values(":rows", AttributeValue::S(format!("{sk}=")))
                .consistent_read(true)
                .send()
                .await
                .unwrap();
            rows.items()
                .iter()
                .map(expiry_in)
                .fold(Expiry::Absent, |longest, e| match (longest, e) {
                    (Expiry::Never, _) | (_, Expiry::Never) => Expiry::Never,
                    (Expiry::In(a), Expiry::In(b)) => Expiry::In(a.max(b)),
                    (Expiry::Absent, e) | (e, Expiry::Absent) => e,
                })
        })
    }

    fn max_value_size(&self) -> usize {
        MAX_VALUE_SIZE
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::all()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dynamodb_tier_passes_the_conformance_suite() {
    let server = DynamoServer::start();
    conformance::run_all(&DynamoFixture::new(&server)).await;
}
