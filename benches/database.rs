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
//! schema check, error mapping. After criterion's groups, paired rounds
//! (`benches/support/paired.rs`) interleave the contenders and print the median ratio of
//! their throughputs (cachet / raw), the figure BENCHMARKS.md records; a filter such as
//! `-- database_paired` runs only them.

#[path = "support/paired.rs"]
mod paired;
#[path = "../tests/support/postgres_server.rs"]
mod postgres_server;
#[path = "support/teardown.rs"]
mod teardown;

use std::hint::black_box;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use cachet::database::{DatabaseOptions, DatabaseTier};
use cachet::store::RemoteTier;
use criterion::{criterion_group, Criterion, Throughput};
use paired::{Paired, Row};
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
        teardown::keep(postgres);
        teardown::keep(teardown::RemovedDir(dir));
        Fixture { rt, dbs }
    })
}

/// The four rows of one database: raw get, cachet get, raw set, cachet set; each cachet
/// row's baseline is the raw row before it (`base` is the index of this database's first
/// row in the whole table).
fn rows(db: &'static Db, base: usize) -> Vec<Row> {
    let tier = Arc::clone(&db.tier);
    let cachet_get = paired::op(move |_| {
        let tier = Arc::clone(&tier);
        async move {
            let got = tier.get(black_box(KEY)).await.expect("get");
            assert_eq!(got.as_deref().map(<[u8]>::len), Some(VALUE.len()));
        }
    });
    let tier = Arc::clone(&db.tier);
    let cachet_set = paired::op(move |_| {
        let tier = Arc::clone(&tier);
        async move {
            tier.set(
                black_box("bench:profiles:set"),
                VALUE.to_vec(),
                Duration::from_secs(3600),
            )
            .await
            .expect("set");
        }
    });
    let raw_get = paired::op(move |_| async move {
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
    });
    let raw_set = paired::op(move |_| async move {
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
    });
    let name = db.name;
    vec![
        Row::new(format!("{name}_get/raw"), raw_get, base),
        Row::new(format!("{name}_get/cachet"), cachet_get, base),
        Row::new(format!("{name}_set/raw"), raw_set, base + 2),
        Row::new(format!("{name}_set/cachet"), cachet_set, base + 2),
    ]
}

fn all_rows(f: &'static Fixture) -> Vec<Row> {
    let mut rows = Vec::new();
    for db in &f.dbs {
        let base = rows.len();
        rows.extend(self::rows(db, base));
    }
    rows
}

fn database(c: &mut Criterion) {
    let f = fixture();
    let mut g = c.benchmark_group("database");
    for row in all_rows(f) {
        g.bench_function(&row.name, |b| {
            b.iter_custom(|n| paired::one_at_a_time(&f.rt, n, &row.op))
        });
    }
    g.finish();
}

fn database_64tasks(c: &mut Criterion) {
    let f = fixture();
    let mut g = c.benchmark_group("database_64tasks");
    g.throughput(Throughput::Elements(TASKS));
    for row in all_rows(f) {
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
        .sample_size(20)
        .configure_from_args()
}

/// The paired comparison: every row in alternation, each cachet row divided by its raw row
/// in the same round.
const PAIRED: Paired = Paired {
    name: "database_paired",
    rounds: 15,
    single_ops: Some(200),
    tasks: TASKS,
    task_ops: 20,
    unit: "ops",
};

criterion_group! {
    name = benches;
    config = config();
    targets = database, database_64tasks
}

fn main() {
    let _stop = teardown::StopAtExit;
    benches();
    Criterion::default().configure_from_args().final_summary();
    if paired::wanted(PAIRED.name) {
        let f = fixture();
        PAIRED.run(&f.rt, &all_rows(f));
    }
}
