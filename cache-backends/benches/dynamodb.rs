//! DynamoDB L2: cachet's `Cache::get` / `Cache::set` on an L2-only DynamoDB store, side
//! by side with the raw SDK call it makes (`GetItem` strongly consistent / `PutItem`), one
//! at a time and from 64 tasks, against moto's emulator started on a loopback port
//! (BENCHMARKS.md, "DynamoDB L2").
//!
//! `cargo bench -p cache-backends --features dynamodb --bench dynamodb` (a group name
//! filters: `-- dynamodb_64tasks`). Without `moto_server` on `PATH` it stops with the
//! install hint. The emulator is the bottleneck by far (a Python server answering each
//! request on a new connection), so absolute numbers say little about DynamoDB itself;
//! the ratios say what cachet adds on top of the SDK call.

#[path = "../../tests/support/dynamodb_server.rs"]
mod dynamodb_server;
#[path = "../../benches/support/paired.rs"]
mod paired;
#[path = "../../benches/support/profile.rs"]
mod profile;
#[path = "../../benches/support/teardown.rs"]
mod teardown;

use std::hint::black_box;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use cache_backends::dynamodb::{DynamoOptions, DynamoTier};
use cache_core::{Cache, CacheManager, StoreBuilder};
use criterion::{criterion_group, Criterion, Throughput};
use dynamodb_server::{DynamoServer, TEST_REGION};
use paired::{Paired, Row};
use profile::{profile, Profile};

const TABLE: &str = "cachet";
const KEY: u64 = 42;
const TASKS: u64 = 64;

struct Fixture {
    rt: tokio::runtime::Runtime,
    cache: Cache,
    raw: aws_sdk_dynamodb::Client,
    /// The bytes cachet stored for `KEY`: what the raw rows read and write.
    bytes: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let server = DynamoServer::start();
        let (id, secret) = server.credentials();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let tier = DynamoTier::new(
            DynamoOptions::new(TABLE)
                .region(TEST_REGION)
                .endpoint(server.endpoint())
                .static_credentials(id, secret)
                .auto_create(true)
                .operation_timeout(Duration::from_secs(10)),
        )
        .expect("tier");
        let manager = CacheManager::builder()
            .prefix("bench")
            .ttl(Duration::from_secs(3600))
            .store("dynamo", StoreBuilder::new().l2(Arc::new(tier)))
            .build()
            .expect("manager");
        let cache = manager.cache("profiles").expect("cache");
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new(TEST_REGION))
            .endpoint_url(server.endpoint())
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                id, secret, None, None, "bench",
            ))
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .build();
        let raw = aws_sdk_dynamodb::Client::from_conf(config);
        let bytes = rt.block_on(async {
            cache.set(&KEY, &profile(KEY)).await.expect("seed");
            let out = raw
                .get_item()
                .table_name(TABLE)
                .key("pk", AttributeValue::S("bench:profiles".into()))
                .key("sk", AttributeValue::S(format!(":{KEY}")))
                .send()
                .await
                .expect("raw read of the seeded item");
            match out.item().and_then(|i| i.get("v")) {
                Some(AttributeValue::B(b)) => b.clone().into_inner(),
                other => panic!("no value stored by cachet: {other:?}"),
            }
        });
        assert_eq!(
            rt.block_on(cache.get::<Profile>(&KEY)).expect("get"),
            Some(profile(KEY))
        );
        teardown::keep(server);
        Fixture {
            rt,
            cache,
            raw,
            bytes,
        }
    })
}

/// The four rows: raw and cachet, get and set, as boxed operations.
fn rows(f: &'static Fixture) -> Vec<Row> {
    let raw_get = paired::op(move |_| async move {
        let out = f
            .raw
            .get_item()
            .table_name(TABLE)
            .key("pk", AttributeValue::S("bench:profiles".into()))
            .key("sk", AttributeValue::S(format!(":{KEY}")))
            .consistent_read(true)
            .send()
            .await
            .expect("raw GetItem");
        black_box(out);
    });
    let raw_set = paired::op(move |_| async move {
        let out = f
            .raw
            .put_item()
            .table_name(TABLE)
            .item("pk", AttributeValue::S("bench:profiles".into()))
            .item("sk", AttributeValue::S(format!(":{}", KEY + 1)))
            .item("v", AttributeValue::B(f.bytes.clone().into()))
            .item("expires_at", AttributeValue::N("4102444800".into()))
            .item("expires_ms", AttributeValue::N("4102444800000".into()))
            .send()
            .await
            .expect("raw PutItem");
        black_box(out);
    });
    let cachet_get = paired::op(move |_| async move {
        black_box(f.cache.get::<Profile>(&KEY).await.expect("get"));
    });
    let cachet_set = paired::op(move |_| async move {
        f.cache.set(&(KEY + 2), &profile(KEY)).await.expect("set");
    });
    vec![
        Row::new("raw_get", raw_get, 0),
        Row::new("cachet_get", cachet_get, 0),
        Row::new("raw_set", raw_set, 2),
        Row::new("cachet_set", cachet_set, 2),
    ]
}

fn dynamodb_one_at_a_time(c: &mut Criterion) {
    let f = fixture();
    let mut g = c.benchmark_group("dynamodb");
    for row in rows(f) {
        g.bench_function(&row.name, |b| {
            b.iter_custom(|n| paired::one_at_a_time(&f.rt, n, &row.op))
        });
    }
    g.finish();
}

fn dynamodb_64tasks(c: &mut Criterion) {
    let f = fixture();
    let mut g = c.benchmark_group("dynamodb_64tasks");
    g.throughput(Throughput::Elements(TASKS));
    for row in rows(f) {
        g.bench_function(&row.name, |b| {
            b.iter_custom(|n| paired::concurrently(&f.rt, TASKS, n, &row.op))
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(10)
        .configure_from_args()
}

/// Every row in alternation, rotated each round; each cachet row's ops/s divided by its
/// raw row's in the same round (the machine's load moves too much between criterion's
/// sequential groups for ratios of their medians).
const PAIRED: Paired = Paired {
    name: "dynamodb_paired",
    rounds: 7,
    single_ops: Some(40),
    tasks: TASKS,
    task_ops: 4,
    unit: "ops",
};

criterion_group! {
    name = benches;
    config = config();
    targets = dynamodb_one_at_a_time, dynamodb_64tasks
}

fn main() {
    let _stop = teardown::StopAtExit;
    benches();
    Criterion::default().configure_from_args().final_summary();
    if paired::wanted(PAIRED.name) {
        let f = fixture();
        PAIRED.run(&f.rt, &rows(f));
    }
}
