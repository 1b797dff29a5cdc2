//! Redis L2 hits: cachet on an L2-only store side by side with the raw `redis` driver it is
//! built on and the `cached` crate's `AsyncRedisCache`, interleaved in one run against one
//! `redis-server` the bench starts on a free loopback port (BENCHMARKS.md, "Redis L2").
//!
//! `cargo bench --features redis --bench redis` (add a group name to filter:
//! `-- redis_hit_64tasks`). Without `redis-server` on `PATH` it stops with the install hint.
//!
//! Every row reads one value that is present before timing starts, so every call is one
//! round trip to Redis: cachet's rows go through a store with no L1, so each is an L2 read
//! (`GETRANGE`) plus the envelope's decode; the raw rows read the very bytes cachet stored,
//! on a `MultiplexedConnection` as cachet's tier does; `cached`'s rows read its own entry
//! (its key, its encoding) through its `AsyncRedisCache`. Each cached path is checked to be
//! a hit before it is timed (its function's run counter must not move; cachet's `l2_hits`
//! must grow) and is skipped with a `SKIPPED` line otherwise.

#[path = "support/paired.rs"]
mod paired;
#[path = "support/profile.rs"]
mod profile;
#[path = "../tests/support/redis_server.rs"]
mod redis_server;
#[path = "support/teardown.rs"]
mod teardown;

use std::future::Future;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{OnceLock, RwLock};
use std::time::Duration;

use cached::ConcurrentCachedAsync;
use criterion::{criterion_group, Criterion, Throughput};
use paired::{Paired, Row};
use profile::{profile, Profile};
use redis::aio::MultiplexedConnection;
use redis_server::RedisServer;

/// The key every hit reads.
const KEY: u64 = 42;
/// How many tasks share the connection in the concurrent group.
const TASKS: u64 = 64;
/// The cache both annotated functions and `Cache::get` use.
const CACHE: &str = "profiles";
/// cachet's key prefix on this server.
const PREFIX: &str = "bench";

/// What a loader fails with (never here); `cached`'s Redis functions must return a `Result`.
#[derive(Debug, Clone)]
struct LoadError(#[allow(dead_code)] String);

static CACHET_RUNS: AtomicU64 = AtomicU64::new(0);
static CACHED_RUNS: AtomicU64 = AtomicU64::new(0);

#[cachet::cacheable("profiles")]
async fn cachet_profile(id: u64) -> Result<Profile, LoadError> {
    CACHET_RUNS.fetch_add(1, Relaxed);
    Ok(profile(id))
}

/// The server's URL, for `cached`'s `create` block (set before the first call).
static URL: OnceLock<String> = OnceLock::new();

fn url() -> &'static str {
    URL.get()
        .expect("the server is started before any cached call")
}

#[cached::macros::concurrent_cached(
    map_error = r##"|e| LoadError(format!("{e:?}"))"##,
    ty = "cached::AsyncRedisCache<u64, Profile>",
    create = r##"{
        cached::AsyncRedisCache::builder("profiles_macro")
            .ttl(Duration::from_secs(3600))
            .connection_string(url())
            .build()
            .await
            .expect("cached's AsyncRedisCache connects")
    }"##
)]
async fn cached_profile(id: u64) -> Result<Profile, LoadError> {
    CACHED_RUNS.fetch_add(1, Relaxed);
    Ok(profile(id))
}

/// The server, the runtime every row runs on, and each contender's handle.
struct Fixture {
    /// A multi-thread runtime with 2 workers (the machine's cores), as a service runs.
    rt: tokio::runtime::Runtime,
    /// `CACHE` on the global manager, whose only store is an L2 on the server.
    cache: cachet::Cache,
    /// `CACHE` on a manager of its own whose L2 has `runtime_connections = false`: every
    /// operation on the backend runtime's connection, whatever runtime calls (the driver
    /// before `current_thread` runtimes got connections of their own).
    cache_backend_conn: cachet::Cache,
    _backend_only: cachet::CacheManager,
    /// The driver cachet's tier uses, connected on `rt`.
    raw: MultiplexedConnection,
    /// The same driver connected on a runtime of one worker thread of its own, as
    /// cachet's tier is (its backend runtime), and used from `rt`'s tasks: the cost of
    /// where the connection's driver runs, without anything else cachet does.
    raw_own_thread: MultiplexedConnection,
    _driver_rt: tokio::runtime::Runtime,
    /// A `current_thread` runtime, for the rows of one read at a time from one (issue 14).
    ct: tokio::runtime::Runtime,
    /// The driver connected on `ct`: its connection's task runs on the caller's thread.
    raw_ct: MultiplexedConnection,
    /// The key cachet stored `KEY` under (`{prefix}:{cache}:{key}`).
    stored_key: String,
    /// The server's port.
    port: u16,
    /// `cached`'s store, holding `KEY` under its own key and encoding.
    peer: cached::AsyncRedisCache<u64, Profile>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let server = RedisServer::start();
        let (url, port) = (server.url(), server.port());
        teardown::keep(server);
        URL.set(url.clone()).expect("the URL is set once");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let manager = cachet::CacheManager::from_toml_str(&format!(
            "prefix = \"{PREFIX}\"\nttl = \"1h\"\ndefault_store = \"l2\"\n\
             [stores.l2]\nl2 = {{ driver = \"redis\", url = \"{url}\" }}\n"
        ))
        .expect("an L2-only manager builds");
        cachet::init(manager).expect("the global manager is set once");
        let cache = cachet::cache(CACHE).expect("cache profiles");
        let backend_only = cachet::CacheManager::from_toml_str(&format!(
            "prefix = \"{PREFIX}\"\nttl = \"1h\"\ndefault_store = \"l2\"\n\
             [stores.l2]\nl2 = {{ driver = \"redis\", url = \"{url}\", runtime_connections = false }}\n"
        ))
        .expect("an L2-only manager builds");
        let cache_backend_conn = backend_only.cache(CACHE).expect("cache profiles");
        let stored_key = format!("{PREFIX}:{CACHE}:{KEY}");
        let (raw, peer) = rt.block_on(async {
            cache
                .set(&KEY, &profile(KEY))
                .await
                .expect("cachet writes to Redis");
            let raw = redis::Client::open(url.as_str())
                .expect("a redis client")
                .get_multiplexed_async_connection()
                .await
                .expect("the raw driver connects");
            let peer = cached::AsyncRedisCache::<u64, Profile>::builder("profiles_store")
                .ttl(Duration::from_secs(3600))
                .connection_string(&url)
                .build()
                .await
                .expect("cached's AsyncRedisCache connects");
            peer.async_cache_set(KEY, profile(KEY))
                .await
                .expect("cached writes to Redis");
            (raw, peer)
        });
        let driver_rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let raw_own_thread = driver_rt.block_on(async {
            redis::Client::open(url.as_str())
                .expect("a redis client")
                .get_multiplexed_async_connection()
                .await
                .expect("the raw driver connects")
        });
        let ct = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current_thread runtime");
        let raw_ct = ct.block_on(async {
            redis::Client::open(url.as_str())
                .expect("a redis client")
                .get_multiplexed_async_connection()
                .await
                .expect("the raw driver connects")
        });
        Fixture {
            rt,
            cache,
            cache_backend_conn,
            _backend_only: backend_only,
            raw,
            raw_own_thread,
            _driver_rt: driver_rt,
            ct,
            raw_ct,
            stored_key,
            port,
            peer,
        }
    })
}

/// `GET` of cachet's stored bytes on the raw driver.
async fn raw_get(mut conn: MultiplexedConnection, key: &str) -> Option<Vec<u8>> {
    redis::cmd("GET")
        .arg(key)
        .query_async(&mut conn)
        .await
        .expect("raw GET")
}

/// `GETRANGE key 0 16 MiB`, the command cachet's tier sends (it bounds what a read fetches).
async fn raw_getrange(mut conn: MultiplexedConnection, key: &str) -> Vec<u8> {
    redis::cmd("GETRANGE")
        .arg(key)
        .arg(0)
        .arg(16usize << 20)
        .query_async(&mut conn)
        .await
        .expect("raw GETRANGE")
}

/// Which rows may be timed: each must be a hit, served by Redis.
struct Checked {
    raw: bool,
    peer_get: bool,
    peer_macro: bool,
    cachet_get: bool,
    cachet_get_backend_conn: bool,
    cachet_macro: bool,
    /// Whether cachet's reads from the `current_thread` runtime go through a connection
    /// made on it (the path its rows there are for).
    runtime_connection: bool,
}

fn check(f: &Fixture) -> &'static Checked {
    static CHECKED: OnceLock<Checked> = OnceLock::new();
    CHECKED.get_or_init(|| {
        let runtime_connection = reads_on_a_runtime_connection(f);
        if !runtime_connection {
            eprintln!("SKIPPED cachet's current_thread rows: its reads from the current_thread runtime never went through a connection made on it (the runtime's polls not recognised in this build?)");
        }
        f.rt.block_on(async {
            let raw = raw_get(f.raw.clone(), &f.stored_key)
                .await
                .is_some_and(|b| !b.is_empty());
            if !raw {
                eprintln!(
                    "SKIPPED raw GET: {} is not on the server (did cachet's key layout change?)",
                    f.stored_key
                );
            }
            let peer_get = matches!(f.peer.async_cache_get(&KEY).await, Ok(Some(p)) if p == profile(KEY));
            if !peer_get {
                eprintln!("SKIPPED cached AsyncRedisCache get: the entry does not read back");
            }
            let peer_macro =
                is_hit("cached #[concurrent_cached(redis)]", &CACHED_RUNS, || async {
                    cached_profile(KEY).await.is_ok()
                })
                .await;
            let l2_hits = f.cache.stats().l2_hits;
            let cachet_get = matches!(f.cache.get::<Profile>(&KEY).await, Ok(Some(p)) if p == profile(KEY))
                && f.cache.stats().l2_hits == l2_hits + 1;
            if !cachet_get {
                eprintln!("SKIPPED cachet Cache::get: not an L2 hit");
            }
            let l2_hits = f.cache_backend_conn.stats().l2_hits;
            let cachet_get_backend_conn = matches!(f.cache_backend_conn.get::<Profile>(&KEY).await, Ok(Some(p)) if p == profile(KEY))
                && f.cache_backend_conn.stats().l2_hits == l2_hits + 1;
            if !cachet_get_backend_conn {
                eprintln!("SKIPPED cachet Cache::get, runtime_connections = false: not an L2 hit");
            }
            let cachet_macro = is_hit("cachet #[cacheable]", &CACHET_RUNS, || async {
                cachet_profile(KEY).await.is_ok()
            })
            .await;
            Checked {
                raw,
                peer_get,
                peer_macro,
                cachet_get,
                cachet_get_backend_conn,
                cachet_macro,
                runtime_connection,
            }
        })
    })
}

/// Whether cachet's reads from `f.ct` come to go through a connection made on that runtime:
/// a client of the server that was not there before serves one (`CLIENT LIST`'s last
/// command). Gives up after 10 s.
fn reads_on_a_runtime_connection(f: &Fixture) -> bool {
    let before: Vec<String> = redis_server::client_list(f.port)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        f.ct.block_on(async {
            black_box(f.cache.get::<Profile>(&KEY).await.ok());
            tokio::task::yield_now().await;
        });
        let found = redis_server::client_list(f.port)
            .into_iter()
            .any(|(id, cmd)| cmd == "getrange" && !before.contains(&id));
        if found {
            return true;
        }
    }
    false
}

/// Whether `call` is served from the cache: after a first call, 100 more must not run the
/// function again.
async fn is_hit<F, Fut>(what: &str, runs: &AtomicU64, call: F) -> bool
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    let mut ok = call().await;
    let before = runs.load(Relaxed);
    for _ in 0..100 {
        ok &= call().await;
    }
    let hit = ok && runs.load(Relaxed) == before;
    if !hit {
        eprintln!(
            "SKIPPED {what}: repeated calls run the function or fail (runs: {before} -> {})",
            runs.load(Relaxed)
        );
    }
    hit
}

// ---------------------------------------------------------------- criterion's groups

/// Every checked row one call at a time.
fn redis_hit(c: &mut Criterion) {
    let f = fixture();
    let mut g = c.benchmark_group("redis_hit");
    for row in contenders(f, check(f)) {
        g.bench_function(&row.name, |b| {
            b.iter_custom(|n| paired::one_at_a_time(&f.rt, n, &row.op))
        });
    }
    g.finish();
}

/// Every checked row from `TASKS` tasks at once. With `Throughput::Elements(TASKS)`,
/// criterion's "time" is per `TASKS` reads and its throughput is the total reads/s.
fn redis_hit_64tasks(c: &mut Criterion) {
    let f = fixture();
    let mut g = c.benchmark_group("redis_hit_64tasks");
    g.throughput(Throughput::Elements(TASKS));
    for row in contenders(f, check(f)) {
        g.bench_function(&row.name, |b| {
            b.iter_custom(|n| paired::concurrently(&f.rt, TASKS, n, &row.op))
        });
    }
    g.finish();
}

/// cachet's rows and the raw driver connected on the `current_thread` runtime, one call at
/// a time from that runtime (issue 14's target: cachet ≤ 1.2 × the raw `GET`).
fn redis_hit_current_thread(c: &mut Criterion) {
    let f = fixture();
    let mut g = c.benchmark_group("redis_hit_current_thread");
    for row in current_thread_rows(f, check(f)) {
        g.bench_function(&row.name, |b| {
            b.iter_custom(|n| paired::one_at_a_time(&f.ct, n, &row.op))
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .measurement_time(Duration::from_millis(2500))
        .warm_up_time(Duration::from_millis(700))
        .sample_size(30)
        .configure_from_args()
}

// ---------------------------------------------------------------- rows and paired rounds

/// The same rows in alternation (`benches/support/paired.rs`): each round runs every row
/// once one at a time and once with `TASKS` tasks, and each row's reads/s is divided by
/// `raw_get`'s in the same round. On a shared machine whose load swings within seconds,
/// these per-round ratios are steadier than ratios of medians taken seconds or minutes
/// apart, which is all criterion's sequential groups can give.
const PAIRED: Paired = Paired {
    name: "redis_paired",
    rounds: 25,
    single_ops: Some(400),
    tasks: TASKS,
    task_ops: 100,
    unit: "reads",
};

/// The same comparison on the `current_thread` runtime: the raw rows on the connection
/// made there, cachet's rows as they are (their connection lives on cachet's backend
/// runtime unless the driver says otherwise).
const PAIRED_CURRENT_THREAD: Paired = Paired {
    name: "redis_current_thread_paired",
    rounds: 25,
    single_ops: Some(400),
    tasks: TASKS,
    task_ops: 100,
    unit: "reads",
};

/// The rows of [`PAIRED_CURRENT_THREAD`]: raw `GET` and `GETRANGE` on the connection made
/// on the `current_thread` runtime, and cachet's two rows.
fn current_thread_rows(f: &'static Fixture, ok: &Checked) -> Vec<Row> {
    let key: &'static str = &f.stored_key;
    let mut out: Vec<(&'static str, paired::Op)> = Vec::new();
    if ok.raw {
        out.extend(raw_rows(&f.raw_ct, key));
    }
    let cachet = cachet_rows(f, ok).into_iter();
    // Without the runtime's connection its rows would measure the shared one's path.
    out.extend(
        cachet
            .filter(|(name, _)| ok.runtime_connection || *name == "cachet_get_backend_connection"),
    );
    rows_against_raw_get(out)
}

/// The raw `GET` and `GETRANGE` rows on `conn`.
fn raw_rows(
    conn: &'static MultiplexedConnection,
    key: &'static str,
) -> [(&'static str, paired::Op); 2] {
    [
        (
            "raw_get",
            paired::op(move |_| async move {
                black_box(raw_get(conn.clone(), key).await);
            }),
        ),
        (
            "raw_getrange",
            paired::op(move |_| async move {
                black_box(raw_getrange(conn.clone(), key).await);
            }),
        ),
    ]
}

/// cachet's checked rows.
fn cachet_rows(f: &'static Fixture, ok: &Checked) -> Vec<(&'static str, paired::Op)> {
    let mut out: Vec<(&'static str, paired::Op)> = Vec::new();
    if ok.cachet_get {
        out.push((
            "cachet_get",
            paired::op(move |_| async move {
                black_box(f.cache.get::<Profile>(&KEY).await.ok());
            }),
        ));
    }
    if ok.cachet_get_backend_conn {
        out.push((
            "cachet_get_backend_connection",
            paired::op(move |_| async move {
                black_box(f.cache_backend_conn.get::<Profile>(&KEY).await.ok());
            }),
        ));
    }
    if ok.cachet_macro {
        out.push((
            "cachet_cacheable",
            paired::op(|_| async {
                black_box(cachet_profile(KEY).await.ok());
            }),
        ));
    }
    out
}

/// Each row's ratio is to `raw_get`'s (to its own without a raw row).
fn rows_against_raw_get(out: Vec<(&'static str, paired::Op)>) -> Vec<Row> {
    let raw = out.iter().position(|(name, _)| *name == "raw_get");
    out.into_iter()
        .enumerate()
        .map(|(i, (name, op))| Row::new(name, op, raw.unwrap_or(i)))
        .collect()
}

/// The checked rows, as boxed operations (the box costs each the same allocation).
fn contenders(f: &'static Fixture, ok: &Checked) -> Vec<Row> {
    let key: &'static str = &f.stored_key;
    let mut out: Vec<(&'static str, paired::Op)> = Vec::new();
    if ok.raw {
        out.extend(raw_rows(&f.raw, key));
        out.push((
            "raw_getrange_driver_on_own_thread",
            paired::op(move |_| async move {
                black_box(raw_getrange(f.raw_own_thread.clone(), key).await);
            }),
        ));
    }
    if ok.peer_get {
        out.push((
            "cached_async_redis_cache_get",
            paired::op(move |_| async move {
                black_box(f.peer.async_cache_get(&KEY).await.ok());
            }),
        ));
    }
    if ok.peer_macro {
        out.push((
            "cached_concurrent_cached",
            paired::op(|_| async {
                black_box(cached_profile(KEY).await.ok());
            }),
        ));
    }
    out.extend(cachet_rows(f, ok));
    rows_against_raw_get(out)
}

// ---------------------------------------------------------------- what a read's overhead is made of

/// `-- redis_overheads`: `raw_get` with, per read, one of the costs a cachet read adds that
/// an instruction count does not weigh (BENCHMARKS.md, "64 tasks, phase J", phase K), timed
/// in paired rounds with `raw_get` and `cachet_get`: whether the gap on two workers is the
/// shared cache lines cachet's read writes or its extra instructions.
const OVERHEADS: Paired = Paired {
    name: "redis_overheads",
    rounds: 25,
    single_ops: None,
    tasks: TASKS,
    task_ops: 100,
    unit: "reads",
};

/// Iterations of [`plain_work`] that make ~5.8k instructions (8 an iteration: callgrind of the
/// same function in a standalone `rustc -O` build): what a cachet read executes beyond
/// `raw_get`'s (14.9k against 9.1k).
const WORK_ITERS: u64 = 725;

/// A cache line every task writes, as the counters and locks cachet shares between threads.
#[repr(align(128))]
struct SharedLine(AtomicU64);

static SHARED_LINE: SharedLine = SharedLine(AtomicU64::new(0));

/// Plain work on the task's own registers and stack: no shared line written.
#[inline(never)]
fn plain_work(n: u64) -> u64 {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for i in 0..n {
        x = black_box(x.rotate_left(5) ^ i).wrapping_mul(0x0100_0000_01B3);
    }
    x
}

/// `n` atomic read-modify-writes of [`SHARED_LINE`].
fn shared_rmws(n: u32) {
    for _ in 0..n {
        SHARED_LINE.0.fetch_add(1, Relaxed);
    }
}

/// The live connection behind a lock every task reads, as cachet's tier holds it
/// (`Shared::live`: one `RwLock` read, two atomic writes of the lock's line, per read).
fn live(f: &'static Fixture) -> &'static RwLock<Option<MultiplexedConnection>> {
    static LIVE: OnceLock<RwLock<Option<MultiplexedConnection>>> = OnceLock::new();
    LIVE.get_or_init(|| RwLock::new(Some(f.raw.clone())))
}

/// The connection taken from [`live`], cloned under its read lock.
fn live_connection(f: &'static Fixture) -> MultiplexedConnection {
    live(f)
        .read()
        .expect("the bench's lock is never poisoned")
        .clone()
        .expect("the bench's live connection is set")
}

/// [`OVERHEADS`]' rows: `raw_get`, `cachet_get`, and `raw_get` plus one cost each.
fn overhead_rows(f: &'static Fixture, ok: &Checked) -> Vec<Row> {
    let key: &'static str = &f.stored_key;
    let mut out: Vec<(&'static str, paired::Op)> = Vec::new();
    if ok.raw {
        out.push(raw_rows(&f.raw, key)[0].clone());
        out.push((
            "raw_get_rwlock",
            paired::op(move |_| async move {
                black_box(raw_get(live_connection(f), key).await);
            }),
        ));
        out.push((
            "raw_get_2_shared_rmw",
            paired::op(move |_| async move {
                shared_rmws(2);
                black_box(raw_get(f.raw.clone(), key).await);
            }),
        ));
        out.push((
            "raw_get_8_shared_rmw",
            paired::op(move |_| async move {
                shared_rmws(8);
                black_box(raw_get(f.raw.clone(), key).await);
            }),
        ));
        out.push((
            "raw_get_5.8k_instructions",
            paired::op(move |_| async move {
                black_box(plain_work(black_box(WORK_ITERS)));
                black_box(raw_get(f.raw.clone(), key).await);
            }),
        ));
        out.push((
            "raw_get_2.9k_instructions",
            paired::op(move |_| async move {
                black_box(plain_work(black_box(WORK_ITERS / 2)));
                black_box(raw_get(f.raw.clone(), key).await);
            }),
        ));
        out.push((
            "raw_get_rwlock_5.8k_instructions",
            paired::op(move |_| async move {
                black_box(plain_work(black_box(WORK_ITERS)));
                black_box(raw_get(live_connection(f), key).await);
            }),
        ));
    }
    out.extend(
        cachet_rows(f, ok)
            .into_iter()
            .filter(|(name, _)| *name == "cachet_get"),
    );
    rows_against_raw_get(out)
}

// ---------------------------------------------------------------- counts per read

/// `-- redis_counts`: what one read of each row costs in counts that do not depend on the
/// machine's load (BENCHMARKS.md, "Redis L2, 64 tasks: counts per read"): `TASKS` tasks ×
/// `REDIS_COUNT_OPS` reads (default 1,000) per row on the bench's runtime, and per read, from
/// the server's `INFO` (`total_commands_processed`, `total_net_input_bytes`,
/// `total_net_output_bytes`, `total_reads_processed`: the socket reads the server made, so
/// commands per read event is how many commands arrived together) and from `/proc` (this
/// process's and the server's voluntary and involuntary context switches, this process's
/// CPU time). `REDIS_ROWS=cachet_get,raw_get` keeps only those rows (with `REDIS_COUNT_OPS`,
/// what `strace -c -f` or `valgrind --tool=callgrind` of two runs with different counts
/// differ by is per read).
const COUNTS: &str = "redis_counts";

/// One look at the server's and this process's counters.
#[derive(Clone, Copy, Default)]
struct Counters {
    commands: f64,
    net_in: f64,
    net_out: f64,
    server_reads: f64,
    server_writes: f64,
    client_switches: (f64, f64),
    server_switches: (f64, f64),
    client_cpu_us: f64,
    server_cpu_us: f64,
}

impl Counters {
    fn now(port: u16) -> Self {
        let info = redis_server::cli(port, &["INFO", "ALL"]);
        let stat = |name: &str| -> f64 {
            info.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(f64::NAN)
        };
        let server_pid = stat("process_id");
        Counters {
            commands: stat("total_commands_processed"),
            net_in: stat("total_net_input_bytes"),
            net_out: stat("total_net_output_bytes"),
            server_reads: stat("total_reads_processed"),
            server_writes: stat("total_writes_processed"),
            client_switches: switches("self"),
            server_switches: switches(&server_pid.to_string()),
            client_cpu_us: cpu_us("self"),
            server_cpu_us: cpu_us(&server_pid.to_string()),
        }
    }
}

/// The voluntary and involuntary context switches of every thread of process `pid`.
fn switches(pid: &str) -> (f64, f64) {
    let mut total = (0.0, 0.0);
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return (f64::NAN, f64::NAN);
    };
    for task in tasks.flatten() {
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        for line in status.lines() {
            let count = |name: &str| {
                line.strip_prefix(name)
                    .and_then(|v| v.trim().parse::<f64>().ok())
            };
            if let Some(n) = count("voluntary_ctxt_switches:") {
                total.0 += n;
            } else if let Some(n) = count("nonvoluntary_ctxt_switches:") {
                total.1 += n;
            }
        }
    }
    total
}

/// The CPU time of every thread of process `pid`, in µs (`/proc/PID/task/*/schedstat`'s
/// time on a CPU, in ns).
fn cpu_us(pid: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return f64::NAN;
    };
    let mut ns = 0.0;
    for task in tasks.flatten() {
        let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        ns += stat
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
    }
    ns / 1e3
}

/// Prints [`COUNTS`]' table for `rows` (those named in `REDIS_ROWS`, if set).
fn counts(f: &Fixture, rows: &[Row]) {
    let ops: u64 = std::env::var("REDIS_COUNT_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let only = std::env::var("REDIS_ROWS").ok();
    let keep = |name: &str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|r| r == name))
    };
    println!(
        "{COUNTS}: per read, {TASKS} tasks x {ops} reads per row on the 2-worker runtime; \
         the INFO asked between rows taken off"
    );
    println!("| row | commands | bytes to server | bytes from server | commands per server read | server writes | client ctx switches vol / invol | server ctx switches vol / invol | client CPU µs | server CPU µs | wall µs |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows.iter().filter(|row| keep(&row.name)) {
        paired::concurrently(&f.rt, TASKS, 10, &row.op);
        let before = Counters::now(f.port);
        let took = paired::concurrently(&f.rt, TASKS, ops, &row.op);
        let after = Counters::now(f.port);
        let n = (TASKS * ops) as f64;
        // One INFO (its command, its read, its reply) is counted in `after`.
        let commands = after.commands - before.commands - 1.0;
        let server_reads = after.server_reads - before.server_reads - 1.0;
        println!(
            "| {} | {:.3} | {:.1} | {:.1} | {:.2} | {:.3} | {:.3} / {:.3} | {:.3} / {:.3} | {:.2} | {:.2} | {:.2} |",
            row.name,
            commands / n,
            (after.net_in - before.net_in) / n,
            (after.net_out - before.net_out) / n,
            commands / server_reads,
            (after.server_writes - before.server_writes - 1.0) / n,
            (after.client_switches.0 - before.client_switches.0) / n,
            (after.client_switches.1 - before.client_switches.1) / n,
            (after.server_switches.0 - before.server_switches.0) / n,
            (after.server_switches.1 - before.server_switches.1) / n,
            (after.client_cpu_us - before.client_cpu_us) / n,
            (after.server_cpu_us - before.server_cpu_us) / n,
            took.as_secs_f64() * 1e6 / n,
        );
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = redis_hit, redis_hit_64tasks, redis_hit_current_thread
}

/// Runs `paired`'s rounds of `rows` on `rt` if they have a `raw_get` row to compare with.
fn run_against_raw_get(paired: &Paired, rt: &tokio::runtime::Runtime, rows: &[Row]) {
    if rows.iter().any(|row| row.name == "raw_get") {
        paired.run(rt, rows);
    } else {
        eprintln!("SKIPPED {}: no raw_get row to compare with", paired.name);
    }
}

fn main() {
    let _stop = teardown::StopAtExit;
    benches();
    Criterion::default().configure_from_args().final_summary();
    if paired::wanted(PAIRED.name) {
        let f = fixture();
        run_against_raw_get(&PAIRED, &f.rt, &contenders(f, check(f)));
    }
    if paired::wanted(OVERHEADS.name) {
        let f = fixture();
        run_against_raw_get(&OVERHEADS, &f.rt, &overhead_rows(f, check(f)));
    }
    if paired::wanted(COUNTS) {
        let f = fixture();
        counts(f, &contenders(f, check(f)));
    }
    if paired::wanted(PAIRED_CURRENT_THREAD.name) {
        let f = fixture();
        run_against_raw_get(
            &PAIRED_CURRENT_THREAD,
            &f.ct,
            &current_thread_rows(f, check(f)),
        );
    }
}
