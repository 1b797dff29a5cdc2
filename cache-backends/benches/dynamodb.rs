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

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use cache_backends::dynamodb::{DynamoOptions, DynamoTier};
use cache_core::{Cache, CacheManager, StoreBuilder};
use criterion::{criterion_group, Criterion, Throughput};
use dynamodb_server::{DynamoServer, TEST_REGION};
use serde::{Deserialize, Serialize};

const TABLE: &str = "cachet";
const KEY: u64 = 42;
const TASKS: u64 = 64;

/// A small record, ~100 bytes encoded.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Profile {
    id: u64,
    name: String,
    email: String,
    roles: Vec<String>,
}

fn profile(id: u64) -> Profile {
    Profile {
        id,
        name: format!("user {id}"),
        email: format!("user{id}@example.org"),
        roles: vec!["reader".into(), "writer".into()],
    }
}

struct Fixture {
    _server: DynamoServer,
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
            rt.block_on(cache.get::<Profile, _>(&KEY)).expect("get"),
            Some(profile(KEY))
        );
        Fixture {
            _server: server,
            rt,
            cache,
            raw,
            bytes,
        }
    })
}

type Op = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// The four rows: raw and cachet, get and set, as boxed operations.
fn rows(f: &'static Fixture) -> Vec<(&'static str, Op)> {
    let raw_get: Op = Arc::new(move || {
        Box::pin(async move {
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
        })
    });
    let raw_set: Op = Arc::new(move || {
        Box::pin(async move {
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
        })
    });
    let cachet_get: Op = Arc::new(move || {
        Box::pin(async move {
            black_box(f.cache.get::<Profile, _>(&KEY).await.expect("get"));
        })
    });
    let cachet_set: Op = Arc::new(move || {
        Box::pin(async move {
            f.cache.set(&(KEY + 2), &profile(KEY)).await.expect("set");
        })
    });
    vec![
        ("raw_get", raw_get),
        ("cachet_get", cachet_get),
        ("raw_set", raw_set),
        ("cachet_set", cachet_set),
    ]
}

/// `iters` calls of `op` in each of `TASKS` tasks started together; the wall time.
fn tasks(rt: &tokio::runtime::Runtime, iters: u64, op: Op) -> Duration {
    rt.block_on(async move {
        let barrier = Arc::new(tokio::sync::Barrier::new(TASKS as usize + 1));
        let handles: Vec<_> = (0..TASKS)
            .map(|_| {
                let (op, barrier) = (op.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    for _ in 0..iters {
                        op().await;
                    }
                })
            })
            .collect();
        barrier.wait().await;
        let t0 = Instant::now();
        for h in handles {
            h.await.expect("bench task");
        }
        t0.elapsed()
    })
}

fn dynamodb_one_at_a_time(c: &mut Criterion) {
    let f = fixture();
    let mut g = c.benchmark_group("dynamodb");
    for (name, op) in rows(f) {
        g.bench_function(name, |b| b.to_async(&f.rt).iter(|| op()));
    }
    g.finish();
}

fn dynamodb_64tasks(c: &mut Criterion) {
    let f = fixture();
    let mut g = c.benchmark_group("dynamodb_64tasks");
    g.throughput(Throughput::Elements(TASKS));
    for (name, op) in rows(f) {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| tasks(&f.rt, iters, op.clone()))
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

// ---------------------------------------------------------------- paired rounds

const ROUNDS: usize = 7;
const SINGLE_OPS: u64 = 40;
const TASK_OPS: u64 = 4;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Every row in alternation, rotated each round; each cachet row's ops/s divided by its
/// raw row's in the same round (the machine's load moves too much between criterion's
/// sequential groups for ratios of their medians).
fn paired_rounds() {
    let f = fixture();
    let rows = rows(f);
    let mut single = vec![Vec::with_capacity(ROUNDS); rows.len()];
    let mut many = vec![Vec::with_capacity(ROUNDS); rows.len()];
    for round in 0..ROUNDS {
        for i in (0..rows.len()).map(|i| (i + round) % rows.len()) {
            let op = &rows[i].1;
            let t0 = Instant::now();
            f.rt.block_on(async {
                for _ in 0..SINGLE_OPS {
                    op().await;
                }
            });
            single[i].push(SINGLE_OPS as f64 / t0.elapsed().as_secs_f64());
            let took = tasks(&f.rt, TASK_OPS, Arc::clone(op));
            many[i].push((TASK_OPS * TASKS) as f64 / took.as_secs_f64());
        }
    }
    // each cachet row against the raw row before it
    let ratio = |runs: &[Vec<f64>], i: usize, raw: usize| {
        median(runs[i].iter().zip(&runs[raw]).map(|(c, r)| c / r).collect())
    };
    println!(
        "dynamodb_paired: {ROUNDS} rounds; per round and row {SINGLE_OPS} calls one at a time, \
         then {TASKS} tasks x {TASK_OPS} calls; medians over rounds; ratio = median of the \
         per-round ratios to the raw SDK row"
    );
    println!("| bench | 1 at a time: ops/s | ms/op | ratio | {TASKS} tasks: ops/s | ratio |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (i, (name, _)) in rows.iter().enumerate() {
        let raw = i - i % 2;
        let one = median(single[i].clone());
        println!(
            "| {name} | {one:.0} | {:.2} | {:.2} | {:.0} | {:.2} |",
            1e3 / one,
            ratio(&single, i, raw),
            median(many[i].clone()),
            ratio(&many, i, raw),
        );
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = dynamodb_one_at_a_time, dynamodb_64tasks
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let filter = args.iter().find(|a| !a.starts_with('-'));
    let measuring =
        args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--list" || a == "--test");
    if measuring && filter.is_none_or(|f| "dynamodb_paired".contains(f.as_str())) {
        paired_rounds();
    }
}
