//! The service end to end: real SQLite, real HTTP on a loopback port, the shipped
//! `cachet.toml` (memory), `cachet.tiered.toml` (memory + a real `redis-server`) and
//! `cachet.postgres.toml` (memory + a real PostgreSQL, no Redis), and two instances on one
//! database and one Redis, or one database and one PostgreSQL.
//!
//! **Where the query counts come from.** Not from a counter in the repository (that would
//! count calls of our own code, which is what the cache is supposed to skip): from the
//! database driver. sqlx reports every statement it ran on a connection as a `tracing`
//! event with target `sqlx::query`, emitted by the connection's worker thread once SQLite
//! has finished the statement. A global subscriber installed here records the SQL of those
//! events ([`StatementLog`]); nothing else in the process emits that target. The worker
//! threads are not the test's threads, so the subscriber has to be the global one; the
//! tests therefore run one at a time ([`SERIAL`]) and look only at statements logged after
//! their instances have started (migrations and seeding come before).
//!
//! sqlx logs a statement when its cursor is dropped, which can be a moment after the rows
//! reached the handler, so [`Db::expect`] polls (with a deadline) until the counts equal
//! the expectation; a statement that should not have run shows up as a count that
//! overshoots, here or at the next expectation.

#[path = "../../../tests/support/postgres_server.rs"]
mod postgres_server;
#[path = "../../../tests/support/redis_server.rs"]
mod redis_server;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use cachet::CacheManager;
use cachet_service_example::{app, db, serve, ProductRepo};
use postgres_server::PostgresServer;
use redis_server::RedisServer;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex as AsyncMutex;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};

/// The tests share the global statement log, so they run one at a time.
static SERIAL: AsyncMutex<()> = AsyncMutex::const_new(());

/// The SQL of every statement sqlx reported, in order.
static STATEMENTS: Mutex<Vec<String>> = Mutex::new(Vec::new());

const SQLX_TARGET: &str = "sqlx::query";

/// A `tracing` subscriber that keeps the SQL of sqlx's statement events and nothing else.
struct StatementLog;

impl Subscriber for StatementLog {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if meta.target() == SQLX_TARGET {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        meta.target() == SQLX_TARGET
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        // sqlx logs statements at DEBUG by default.
        Some(tracing::level_filters::LevelFilter::TRACE)
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        // Never called for enabled spans: only events are enabled.
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut sql = SqlFields::default();
        event.record(&mut sql);
        // sqlx puts the first words in `summary`, and the whole text in `db.statement`
        // only when it is longer than the summary.
        let text = if sql.statement.trim().is_empty() {
            sql.summary
        } else {
            sql.statement
        };
        STATEMENTS
            .lock()
            .unwrap()
            .push(text.split_whitespace().collect::<Vec<_>>().join(" "));
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

#[derive(Default)]
struct SqlFields {
    summary: String,
    statement: String,
}

impl Visit for SqlFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "summary" => self.summary = value.to_owned(),
            "db.statement" => self.statement = value.to_owned(),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
}

/// Statements on the `products` table since the last [`Db::reset`], by what they did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counts {
    /// `SELECT .. WHERE id = ?`: a product read by id.
    by_id: usize,
    /// `SELECT .. WHERE category = ?`: a category's list.
    by_category: usize,
    updates: usize,
    deletes: usize,
    inserts: usize,
}

/// The database side of the tests: what sqlx says it ran.
struct Db;

impl Db {
    fn install() {
        static INSTALL: Once = Once::new();
        INSTALL.call_once(|| {
            tracing::subscriber::set_global_default(StatementLog)
                .expect("no other global tracing subscriber in this test binary")
        });
    }

    fn reset() {
        STATEMENTS.lock().unwrap().clear();
    }

    fn counts() -> Counts {
        let mut counts = Counts::default();
        for sql in STATEMENTS.lock().unwrap().iter() {
            let sql = sql.to_ascii_uppercase();
            if sql.starts_with("SELECT") && sql.contains("FROM PRODUCTS WHERE ID = ?") {
                counts.by_id += 1;
            } else if sql.starts_with("SELECT") && sql.contains("FROM PRODUCTS WHERE CATEGORY = ?")
            {
                counts.by_category += 1;
            } else if sql.starts_with("UPDATE PRODUCTS") {
                counts.updates += 1;
            } else if sql.starts_with("DELETE FROM PRODUCTS") {
                counts.deletes += 1;
            } else if sql.starts_with("INSERT INTO PRODUCTS") {
                counts.inserts += 1;
            }
        }
        counts
    }

    /// Waits until the counts are `expected`; fails, showing both, after five seconds.
    async fn expect(step: &str, expected: Counts) {
        let start = Instant::now();
        loop {
            let counts = Self::counts();
            if counts == expected {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "{step}: the database ran {counts:?}, expected {expected:?}; statements: {:#?}",
                STATEMENTS.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// One running instance of the service, stopped when dropped.
struct Instance {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Instance {
    async fn start(database: &Path, cache: CacheManager) -> Self {
        let repo = ProductRepo::new(db::open(database).await.expect("open the database"));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(serve(listener, app(repo, cache)));
        Self { addr, task }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        call(self.addr, method, path, body).await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None).await
    }
}

/// One HTTP/1.1 request (raw, over a fresh connection): the status and the JSON body,
/// if any.
async fn call(addr: SocketAddr, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        addr,
        body.len()
    );
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8(response).expect("a UTF-8 response");
    let (head, body) = response
        .split_once("\r\n\r\n")
        .expect("a response head and body");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a status line in {head:?}"));
    let body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_owned()))
    };
    (status, body)
}

fn product(id: i64, name: &str, category: &str, price_cents: i64) -> Value {
    json!({ "id": id, "name": name, "category": category, "price_cents": price_cents })
}

fn change(name: &str, category: &str, price_cents: i64) -> Value {
    json!({ "name": name, "category": category, "price_cents": price_cents })
}

fn ids(list: &Value) -> Vec<i64> {
    list.as_array()
        .expect("a JSON list")
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect()
}

fn shipped_config(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `cachet.tiered.toml` as shipped, pointed at the test's Redis instead of port 6379.
fn tiered_manager(server: &RedisServer) -> CacheManager {
    let text = shipped_config("cachet.tiered.toml");
    let shipped_url = "redis://127.0.0.1:6379/0";
    assert!(
        text.contains(shipped_url),
        "the shipped tiered config names {shipped_url}"
    );
    CacheManager::from_toml_str(&text.replace(shipped_url, &server.url())).unwrap()
}

/// Reads, updates, deletes and creates through one instance, checking each answer and
/// what the database ran for it.
async fn single_instance_scenario(service: &Instance) {
    let mut db = Counts::default();

    // Repeated reads of one product: one SELECT.
    for _ in 0..5 {
        assert_eq!(
            service.get("/products/1").await,
            (200, product(1, "Espresso beans", "coffee", 1450))
        );
    }
    db.by_id += 1;
    Db::expect("five GETs of product 1", db).await;

    // Repeated reads of a list: one SELECT.
    for _ in 0..3 {
        let (status, list) = service.get("/categories/coffee/products").await;
        assert_eq!((status, ids(&list)), (200, vec![1, 2, 3]));
    }
    db.by_category += 1;
    Db::expect("three GETs of the coffee list", db).await;

    // PUT returns the new row and puts it in the cache: the next GETs serve the new value
    // without reading the database; the list is evicted and read again once.
    let (status, body) = service
        .call(
            "PUT",
            "/products/1",
            Some(change("Espresso beans", "coffee", 1999)),
        )
        .await;
    assert_eq!(
        (status, body),
        (200, product(1, "Espresso beans", "coffee", 1999))
    );
    db.updates += 1;
    Db::expect("PUT product 1", db).await;
    for _ in 0..3 {
        assert_eq!(
            service.get("/products/1").await,
            (200, product(1, "Espresso beans", "coffee", 1999))
        );
    }
    Db::expect("GETs after the PUT come from the cache_put entry", db).await;
    for _ in 0..2 {
        let (status, list) = service.get("/categories/coffee/products").await;
        assert_eq!(status, 200);
        assert_eq!(list[0], product(1, "Espresso beans", "coffee", 1999));
    }
    db.by_category += 1;
    Db::expect(
        "the coffee list, evicted by the PUT, is read again once",
        db,
    )
    .await;

    // A product moving category leaves the old list and joins the new one.
    let (status, _) = service
        .call(
            "PUT",
            "/products/2",
            Some(change("Filter papers", "tea", 399)),
        )
        .await;
    assert_eq!(status, 200);
    db.updates += 1;
    let (_, coffee) = service.get("/categories/coffee/products").await;
    let (_, tea) = service.get("/categories/tea/products").await;
    assert_eq!((ids(&coffee), ids(&tea)), (vec![1, 3], vec![2, 4, 5]));
    db.by_category += 2;
    Db::expect("both lists after moving product 2", db).await;

    // DELETE, then GET: a 404, never the deleted row; the 404 is cached (one SELECT).
    assert_eq!(service.call("DELETE", "/products/3", None).await.0, 204);
    db.deletes += 1;
    for _ in 0..3 {
        assert_eq!(service.get("/products/3").await, (404, Value::Null));
    }
    db.by_id += 1;
    let (_, coffee) = service.get("/categories/coffee/products").await;
    assert_eq!(ids(&coffee), vec![1]);
    db.by_category += 1;
    Db::expect("DELETE product 3, then GETs", db).await;
    assert_eq!(service.call("DELETE", "/products/3", None).await.0, 404);
    db.deletes += 1;
    let (status, _) = service
        .call(
            "PUT",
            "/products/3",
            Some(change("Moka pot", "coffee", 3500)),
        )
        .await;
    assert_eq!(status, 404, "PUT of a deleted product");
    db.updates += 1;
    assert_eq!(service.get("/products/3").await.0, 404);
    Db::expect("DELETE and PUT of the deleted product", db).await;

    // A lookup of an id not created yet caches `None`; creating it evicts that entry.
    assert_eq!(service.get("/products/6").await.0, 404);
    db.by_id += 1;
    let (status, created) = service
        .call("POST", "/products", Some(change("Tea cups", "tea", 1200)))
        .await;
    assert_eq!(
        (status, &created),
        (201, &product(6, "Tea cups", "tea", 1200))
    );
    db.inserts += 1;
    for _ in 0..2 {
        assert_eq!(service.get("/products/6").await, (200, created.clone()));
    }
    db.by_id += 1;
    let (_, tea) = service.get("/categories/tea/products").await;
    assert_eq!(ids(&tea), vec![2, 4, 5, 6]);
    db.by_category += 1;
    Db::expect("POST product 6, then GETs", db).await;

    // Invalid input is refused before any statement runs.
    let (status, _) = service
        .call(
            "PUT",
            "/products/1",
            Some(change("Espresso beans", "coffee", -1)),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        service.get("/products/1").await,
        (200, product(1, "Espresso beans", "coffee", 1999))
    );
    Db::expect("a refused PUT", db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_config_caches_reads_and_never_serves_stale_rows() {
    let _serial = SERIAL.lock().await;
    Db::install();
    let dir = tempfile::tempdir().unwrap();
    let cache =
        CacheManager::from_toml_file(Path::new(env!("CARGO_MANIFEST_DIR")).join("cachet.toml"))
            .unwrap();
    let service = Instance::start(&dir.path().join("shop.db"), cache).await;
    Db::reset();
    single_instance_scenario(&service).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiered_config_caches_reads_and_never_serves_stale_rows() {
    let _serial = SERIAL.lock().await;
    Db::install();
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let service = Instance::start(&dir.path().join("shop.db"), tiered_manager(&redis)).await;
    Db::reset();
    single_instance_scenario(&service).await;
}

/// Subscribers of the bus channel of the shipped tiered config (prefix `service`).
fn bus_subscribers(redis: &RedisServer) -> String {
    let out = std::process::Command::new("redis-cli")
        .args([
            "-p",
            &redis.port().to_string(),
            "PUBSUB",
            "NUMSUB",
            "service:__bus",
        ])
        .output()
        .expect("redis-cli (installed with redis-server) runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .unwrap_or_default()
        .to_owned()
}

/// Polls `path` on `service` until it answers `expected`, for at most five seconds: the bus
/// message from the other instance takes a few milliseconds to arrive.
async fn until_served(service: &Instance, path: &str, expected: (u16, Value)) {
    let start = Instant::now();
    loop {
        let got = service.get(path).await;
        if got == expected {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{path}: still {got:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tiered_instances_never_serve_what_the_other_changed() {
    let _serial = SERIAL.lock().await;
    Db::install();
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("shop.db");
    let a = Instance::start(&database, tiered_manager(&redis)).await;
    let b = Instance::start(&database, tiered_manager(&redis)).await;
    two_instance_scenario(&a, &b, "Redis", || bus_subscribers(&redis) == "2").await;
}

/// `cachet.postgres.toml` as shipped, pointed at the test's PostgreSQL.
fn postgres_manager(server: &PostgresServer) -> CacheManager {
    let text = shipped_config("cachet.postgres.toml");
    let shipped_url = "postgres://cachet@127.0.0.1:5432/postgres";
    assert!(
        text.contains(shipped_url),
        "the shipped postgres config names {shipped_url}"
    );
    CacheManager::from_toml_str(&text.replace(shipped_url, &server.url())).unwrap()
}

/// Two instances kept coherent through PostgreSQL alone: L2 and bus on one PostgreSQL
/// server, no Redis anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_postgres_instances_never_serve_what_the_other_changed() {
    let _serial = SERIAL.lock().await;
    Db::install();
    let postgres = PostgresServer::start();
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("shop.db");
    let a = Instance::start(&database, postgres_manager(&postgres)).await;
    let b = Instance::start(&database, postgres_manager(&postgres)).await;
    // A listening connection's last statement is its LISTEN.
    let listeners = || {
        postgres.psql("SELECT COUNT(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN %'") == "2"
    };
    two_instance_scenario(&a, &b, "PostgreSQL", listeners).await;
}

/// B reads, A changes and deletes: B never serves what A changed, and reads the products
/// table only when it must. `shared` names the L2; `buses_listen` says whether both
/// instances' buses are listening.
async fn two_instance_scenario(
    a: &Instance,
    b: &Instance,
    shared: &str,
    buses_listen: impl Fn() -> bool,
) {
    Db::reset();
    let mut db = Counts::default();

    // B reads from the database; A then finds the row in Redis; B keeps it in its L1.
    let espresso = product(1, "Espresso beans", "coffee", 1450);
    assert_eq!(b.get("/products/1").await, (200, espresso.clone()));
    assert_eq!(a.get("/products/1").await, (200, espresso.clone()));
    assert_eq!(b.get("/products/1").await, (200, espresso));
    let (_, coffee) = b.get("/categories/coffee/products").await;
    let (_, coffee_a) = a.get("/categories/coffee/products").await;
    assert_eq!(
        (ids(&coffee), ids(&coffee_a)),
        (vec![1, 2, 3], vec![1, 2, 3])
    );
    db.by_id += 1;
    db.by_category += 1;
    Db::expect(&format!("B reads, A finds the entries in {shared}"), db).await;

    // Both buses listen before A changes anything, or B could miss the invalidation.
    let start = Instant::now();
    while !buses_listen() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "both buses subscribe"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // A updates product 1: B drops its L1 copy (the bus) and serves A's row from Redis,
    // without reading the database.
    let updated = product(1, "Espresso beans", "coffee", 1999);
    let put = a
        .call(
            "PUT",
            "/products/1",
            Some(change("Espresso beans", "coffee", 1999)),
        )
        .await;
    assert_eq!(put, (200, updated.clone()));
    db.updates += 1;
    until_served(b, "/products/1", (200, updated.clone())).await;
    for _ in 0..3 {
        assert_eq!(b.get("/products/1").await, (200, updated.clone()));
    }
    Db::expect(&format!("B serves A's update from {shared}"), db).await;

    // A moves product 2 to tea: B's coffee list is evicted too, and read again once.
    let moved = a
        .call(
            "PUT",
            "/products/2",
            Some(change("Filter papers", "tea", 399)),
        )
        .await;
    assert_eq!(moved.0, 200);
    db.updates += 1;
    let start = Instant::now();
    loop {
        let (_, coffee) = b.get("/categories/coffee/products").await;
        if ids(&coffee) == vec![1, 3] {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "B's coffee list: {coffee}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    db.by_category += 1;
    let (_, coffee_a) = a.get("/categories/coffee/products").await;
    assert_eq!(ids(&coffee_a), vec![1, 3]);
    Db::expect("the list, evicted by A, is read again once by B", db).await;

    // A deletes product 1: B answers 404, after one database read, and never the row again.
    assert_eq!(a.call("DELETE", "/products/1", None).await.0, 204);
    db.deletes += 1;
    until_served(b, "/products/1", (404, Value::Null)).await;
    for _ in 0..3 {
        assert_eq!(b.get("/products/1").await, (404, Value::Null));
        assert_eq!(a.get("/products/1").await, (404, Value::Null));
    }
    db.by_id += 1;
    Db::expect("B's 404 after A's DELETE", db).await;
}

/// The `cachet-service-example` binary, killed when dropped.
struct Binary(std::process::Child);

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The program itself (`src/main.rs`), as a child process: it reads the cache configuration
/// named by `CACHET_CONFIG` (here the shipped tiered one, pointed at the test's Redis) and
/// the database named by `SERVICE_DATABASE`; the entry it caches shows up in Redis under the
/// configured prefix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_program_uses_the_config_named_by_cachet_config() {
    use std::io::BufRead;

    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cachet.toml");
    let text =
        shipped_config("cachet.tiered.toml").replace("redis://127.0.0.1:6379/0", &redis.url());
    std::fs::write(&config, text).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cachet-service-example"))
        .env("CACHET_CONFIG", &config)
        .env("SERVICE_DATABASE", dir.path().join("shop.db"))
        .env("SERVICE_ADDR", "127.0.0.1:0")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the service binary");
    let stdout = child.stdout.take().unwrap();
    let program = Binary(child);
    // The reader stays open until the end: the program prints more lines after the first.
    let (first_line, _stdout) = tokio::task::spawn_blocking(move || {
        let mut reader = std::io::BufReader::new(stdout);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        (line, reader)
    })
    .await
    .unwrap();
    let addr: SocketAddr = first_line
        .strip_prefix("serving http://")
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| panic!("the program announces its address: {first_line:?}"));
    assert!(first_line.contains("[\"tiered\"]"), "{first_line}");

    assert_eq!(
        call(addr, "GET", "/products/1", None).await,
        (200, product(1, "Espresso beans", "coffee", 1450))
    );
    let out = std::process::Command::new("redis-cli")
        .args([
            "-p",
            &redis.port().to_string(),
            "EXISTS",
            "service:products:1",
        ])
        .output()
        .expect("redis-cli (installed with redis-server) runs");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
    drop(program);
}
