//! The database L2: cachet's `DatabaseTier` get and set side by side with the raw sqlx
//! statement it issues, on PostgreSQL (a server the bench starts on a free loopback port) and
//! SQLite (a temporary file), one at a time and from 64 tasks (BENCHMARKS.md, "Database
//! L2").
//!
//! `cargo bench --features postgres,sqlite --bench database -- --warm-up-time 1
//! --measurement-time 3` (add a group name to filter: `-- database_get_64tasks`).
//!
//! The raw rows run the very statements the tier runs (its `SELECT .. substring(..)` of a
//! live row; its `INSERT .. ON CONFLICT DO UPDATE`), on a pool of the same size and settings,
//! so the difference is what cachet adds: the bounded, background-runtime operation, the
//! schema check, error mapping. After criterion's groups, paired rounds interleave the
//! contenders and print the median ratio of their throughputs (cachet / raw), the figure
//! BENCHMARKS.md records.

#[path = "../tests/support/postgres_server.rs"]
mod postgres_server;

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use cachet::database::{DatabaseOptions, DatabaseTier};
use cachet::store::RemoteTier;
use criterion::{criterion_group, Criterion, Throughput};
use postgres_server::PostgresServer;

/// How many tasks run at once in the concurrent groups.
const TASKS: u64 = 64;
/// The key every get reads.
const KEY: &str = "bench:profiles:42";
/// A value of ~100 bytes, like an encoded small record.
const VALUE: [u8; 100] = [7; 100];
/// The pool size of both contenders.
const POOL: u32 = 10;

const PG_NOW: &str = "(EXTRACT(EPOCH FROM now()) * 1000)::BIGINT";
const LITE_NOW: &str = "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)";

/// One database under test.
struct Db {
    name: &'static str,
    tier: Arc<DatabaseTier>,
    raw: Raw,
    get: String,
    set: String,
}

#[derive(Clone)]
enum Raw {
    Postgres(sqlx::PgPool),
    Sqlite(sqlx::SqlitePool),
}

struct Fixture {
    rt: tokio::runtime::Runtime,
    dbs: Vec<Db>,
    _postgres: PostgresServer,
    _dir: std::path::PathBuf,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let postgres = PostgresServer::start();
        let dir = std::env::temp_dir().join(format!("cachet-bench-sqlite-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let lite_url = format!("sqlite://{}/cache.db", dir.display());
        let max = 16 * 1024 * 1024 + 1;
        let dbs = rt.block_on(async {
            let mut dbs = Vec::new();
            for (name, url, now) in [("postgres", postgres.url(), PG_NOW), ("sqlite", lite_url.clone(), LITE_NOW)] {
                let tier = Arc::new(
                    DatabaseTier::new(&DatabaseOptions::new(&url).max_connections(POOL).operation_timeout(Duration::from_secs(10)))
                        .expect("tier"),
                );
                tier.set(KEY, VALUE.to_vec(), Duration::from_secs(3600)).await.expect("seed");
                let (raw, get, set) = if name == "postgres" {
                    let pool = sqlx::postgres::PgPoolOptions::new()
                        .max_connections(POOL)
                        .test_before_acquire(false)
                        .connect(&url)
                        .await
                        .expect("raw pool");
                    (
                        Raw::Postgres(pool),
                        format!("SELECT substring(cache_value FROM 1 FOR {max}) FROM cachet_entries WHERE cache_key = $1 AND expires_at > {now}"),
                        format!("INSERT INTO cachet_entries (cache_key, cache_value, expires_at) VALUES ($1, $2, {now} + $3) ON CONFLICT (cache_key) DO UPDATE SET cache_value = excluded.cache_value, expires_at = excluded.expires_at"),
                    )
                } else {
                    use std::str::FromStr as _;
                    let options = sqlx::sqlite::SqliteConnectOptions::from_str(&url)
                        .expect("url")
                        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                        .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
                        .busy_timeout(Duration::from_secs(10));
                    let pool = sqlx::sqlite::SqlitePoolOptions::new()
                        .max_connections(POOL)
                        .test_before_acquire(false)
                        .connect_with(options)
                        .await
                        .expect("raw pool");
                    (
                        Raw::Sqlite(pool),
                        format!("SELECT substr(cache_value, 1, {max}) FROM cachet_entries WHERE cache_key = ?1 AND expires_at > {now}"),
                        format!("INSERT INTO cachet_entries (cache_key, cache_value, expires_at) VALUES (?1, ?2, {now} + ?3) ON CONFLICT (cache_key) DO UPDATE SET cache_value = excluded.cache_value, expires_at = excluded.expires_at"),
                    )
                };
                dbs.push(Db { name, tier, raw, get, set });
            }
            dbs
        });
        Fixture { rt, dbs, _postgres: postgres, _dir: dir }
    })
}

type Op = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// The four operations of one database: (name, op).
fn ops(db: &'static Db) -> Vec<(String, Op)> {
    let tier = db.tier.clone();
    let cachet_get: Op = Arc::new(move || {
        let tier = tier.clone();
        Box::pin(async move {
            let got = tier.get(black_box(KEY)).await.expect("get");
            assert_eq!(got.as_deref().map(<[u8]>::len), Some(VALUE.len()));
        })
    });
    let tier = db.tier.clone();
    let cachet_set: Op = Arc::new(move || {
        let tier = tier.clone();
        Box::pin(async move {
            tier.set(
                black_box("bench:profiles:set"),
                VALUE.to_vec(),
                Duration::from_secs(3600),
            )
            .await
            .expect("set");
        })
    });
    let raw_get: Op = Arc::new(move || {
        Box::pin(async move {
            use sqlx::Row as _;
            let got: Vec<u8> = match &db.raw {
                Raw::Postgres(p) => sqlx::query(&db.get)
                    .bind(black_box(KEY))
                    .fetch_one(p)
                    .await
                    .expect("get")
                    .get(0),
                Raw::Sqlite(p) => sqlx::query(&db.get)
                    .bind(black_box(KEY))
                    .fetch_one(p)
                    .await
                    .expect("get")
                    .get(0),
            };
            assert_eq!(got.len(), VALUE.len());
        })
    });
    let raw_set: Op = Arc::new(move || {
        Box::pin(async move {
            let key = black_box("bench:profiles:set");
            match &db.raw {
                Raw::Postgres(p) => sqlx::query(&db.set)
                    .bind(key)
                    .bind(VALUE.to_vec())
                    .bind(3_600_000i64)
                    .execute(p)
                    .await
                    .map(|_| ()),
                Raw::Sqlite(p) => sqlx::query(&db.set)
                    .bind(key)
                    .bind(VALUE.to_vec())
                    .bind(3_600_000i64)
                    .execute(p)
                    .await
                    .map(|_| ()),
            }
            .expect("set");
        })
    });
    vec![
        (format!("{}_get/cachet", db.name), cachet_get),
        (format!("{}_get/raw", db.name), raw_get),
        (format!("{}_set/cachet", db.name), cachet_set),
        (format!("{}_set/raw", db.name), raw_set),
    ]
}

/// Runs `op` `iters` times in each of `TASKS` tasks, released together; the wall time.
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

fn one_at_a_time(rt: &tokio::runtime::Runtime, iters: u64, op: Op) -> Duration {
    rt.block_on(async move {
        let t0 = Instant::now();
        for _ in 0..iters {
            op().await;
        }
        t0.elapsed()
    })
}

fn database(c: &mut Criterion) {
    let f = fixture();
    let mut g = c.benchmark_group("database");
    for db in &f.dbs {
        for (name, op) in ops(db) {
            g.bench_function(name, |b| {
                b.iter_custom(|n| one_at_a_time(&f.rt, n, op.clone()))
            });
        }
    }
    g.finish();
}

fn database_64tasks(c: &mut Criterion) {
    let f = fixture();
    let mut g = c.benchmark_group("database_64tasks");
    g.throughput(Throughput::Elements(TASKS));
    for db in &f.dbs {
        for (name, op) in ops(db) {
            g.bench_function(name, |b| b.iter_custom(|n| tasks(&f.rt, n, op.clone())));
        }
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(20)
        .configure_from_args()
}

/// Rounds of the paired comparison.
const ROUNDS: usize = 15;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Cachet and raw interleaved round by round; prints the median ratio of throughputs.
fn paired_rounds() {
    let f = fixture();
    println!("\ndatabase paired rounds (median of {ROUNDS}; ratio = cachet ops/s ÷ raw ops/s)");
    for db in &f.dbs {
        let ops = ops(db);
        for pair in ops.chunks(2) {
            let [(name, cachet), (_, raw)] = pair else {
                continue;
            };
            for (mode, per_round) in [("1 at a time", 200u64), ("64 tasks", 20)] {
                let mut ratios = Vec::new();
                let (mut c_rate, mut r_rate) = (Vec::new(), Vec::new());
                for _ in 0..ROUNDS {
                    let run = |op: &Op| {
                        if mode == "64 tasks" {
                            let t = tasks(&f.rt, per_round, op.clone());
                            (per_round * TASKS) as f64 / t.as_secs_f64()
                        } else {
                            let t = one_at_a_time(&f.rt, per_round, op.clone());
                            per_round as f64 / t.as_secs_f64()
                        }
                    };
                    let c = run(cachet);
                    let r = run(raw);
                    ratios.push(c / r);
                    c_rate.push(c);
                    r_rate.push(r);
                }
                let op = name.split('/').next().unwrap_or(name);
                println!(
                    "  {op:<14} {mode:<12} cachet {:>8.0}/s  raw {:>8.0}/s  ratio {:.2}",
                    median(c_rate),
                    median(r_rate),
                    median(ratios)
                );
            }
        }
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = database, database_64tasks
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let filter = args.iter().find(|a| !a.starts_with('-'));
    let measuring =
        args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--list" || a == "--test");
    if measuring && filter.is_none_or(|f| "database_paired".contains(f.as_str())) {
        paired_rounds();
    }
}
