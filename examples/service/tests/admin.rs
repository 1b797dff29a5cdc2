//! The cache administration endpoint end to end: cachet's `http` routes mounted by the
//! service under `/admin` behind its bearer token, over real HTTP on a loopback port, on
//! the shipped `cachet.tiered.toml` pointed at a real `redis-server` that requires a
//! password. No response (head or body, success or failure) may hold that password.

#[path = "../../../tests/support/redis_server.rs"]
mod redis_server;

use std::net::SocketAddr;
use std::path::Path;

use cachet::CacheManager;
use cachet_service_example::{app, db, serve, with_admin, AdminToken, ProductRepo};
use redis_server::RedisServer;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const PASSWORD: &str = "pw-Zq81-never-shown";
const TOKEN: &str = "admin-token-7f3a";

/// A response: its status, its raw text (head and body) and its JSON body.
struct Answer {
    status: u16,
    raw: String,
    json: Value,
}

/// The service under test and every response it gave.
struct Service {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    seen: Vec<String>,
}

impl Drop for Service {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Service {
    async fn start(database: &Path, cache: CacheManager) -> Self {
        let repo = ProductRepo::new(db::open(database).await.expect("open the database"));
        let router = with_admin(
            app(repo, cache.clone()),
            cache,
            AdminToken::new(TOKEN).unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(serve(listener, router));
        Service {
            addr,
            task,
            seen: Vec::new(),
        }
    }

    /// One HTTP/1.1 request over a fresh connection, with `Authorization: <auth>` if given.
    async fn call(&mut self, method: &str, path: &str, auth: Option<&str>) -> Answer {
        let auth = auth
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{auth}Content-Length: 0\r\n\r\n",
            self.addr
        );
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        let raw = String::from_utf8(response).expect("a UTF-8 response");
        let (head, body) = raw.split_once("\r\n\r\n").expect("a head and a body");
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("a status line in {head:?}"));
        let json = serde_json::from_str(body).unwrap_or(Value::Null);
        self.seen.push(raw.clone());
        Answer { status, raw, json }
    }

    async fn admin(&mut self, method: &str, path: &str) -> Answer {
        self.call(method, path, Some(&format!("Bearer {TOKEN}")))
            .await
    }
}

/// `cachet.tiered.toml` as shipped, pointed at the test's Redis (password and all).
fn tiered_manager(server: &RedisServer) -> CacheManager {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("cachet.tiered.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let url = server.url();
    assert!(url.contains(PASSWORD), "the store URL holds the password");
    CacheManager::from_toml_str(&text.replace("redis://127.0.0.1:6379/0", &url)).unwrap()
}

fn cache_named<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["caches"]
        .as_array()
        .expect("a list of caches")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("cache {name} in {list}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoint_lists_clears_and_deletes_behind_the_token() {
    let redis = RedisServer::start_with_password(PASSWORD);
    let dir = tempfile::tempdir().unwrap();
    let cache = tiered_manager(&redis);
    let products = cache.cache("products").unwrap();
    let mut service = Service::start(&dir.path().join("shop.db"), cache).await;

    // Without the token, or with a wrong one: 401, and nothing about the caches.
    for auth in [
        None,
        Some("Bearer wrong"),
        Some(&format!("Basic {TOKEN}")[..]),
        Some(&format!("Bearer {TOKEN}x")[..]),
    ] {
        for (method, path) in [
            ("GET", "/admin/caches"),
            ("GET", "/admin/caches/products"),
            ("DELETE", "/admin/caches/products"),
            ("DELETE", "/admin/caches/products/1"),
        ] {
            let answer = service.call(method, path, auth).await;
            assert_eq!(answer.status, 401, "{method} {path} with {auth:?}");
            assert!(answer.json["error"].is_string(), "{}", answer.raw);
            assert!(!answer.raw.contains("products\""), "{}", answer.raw);
        }
    }
    // The API itself needs no token.
    assert_eq!(service.call("GET", "/products/1", None).await.status, 200);
    assert_eq!(service.call("GET", "/products/1", None).await.status, 200);
    assert_eq!(service.call("GET", "/products/2", None).await.status, 200);

    // GET /caches: both caches, their store, their counters.
    let list = service.admin("GET", "/admin/caches").await;
    assert_eq!(list.status, 200, "{}", list.raw);
    let listed = cache_named(&list.json, "products");
    assert_eq!(listed["store"]["name"], "tiered");
    assert_eq!(listed["store"]["prefix"], "service");
    let shared = listed["store"]["shared"].as_str().expect("a shared tier");
    assert!(
        shared.starts_with("redis ") && shared.contains(&redis.port().to_string()),
        "{shared}"
    );
    let stats = &listed["stats"];
    assert_eq!(
        (&stats["hits"], &stats["misses"], &stats["puts"]),
        (&Value::from(1), &Value::from(2), &Value::from(2)),
        "{stats}"
    );
    assert_eq!(stats["l1_hits"], 1);
    assert_eq!(
        cache_named(&list.json, "products_by_category")["stats"]["hits"],
        0
    );

    // GET /caches/{name}: the one cache; an unknown name is a 404 with a JSON error.
    let one = service.admin("GET", "/admin/caches/products").await;
    assert_eq!((one.status, &one.json["stats"]), (200, stats));
    let unknown = service.admin("GET", "/admin/caches/nope").await;
    assert_eq!(unknown.status, 404);
    assert!(
        unknown.json["error"].as_str().unwrap().contains("nope"),
        "{}",
        unknown.raw
    );
    assert_eq!(
        service.admin("DELETE", "/admin/caches/nope").await.status,
        404
    );
    assert_eq!(
        service.admin("DELETE", "/admin/caches/nope/1").await.status,
        404
    );

    // DELETE /caches/{name}/{key}: that entry leaves Redis and L1; the next read misses.
    assert!(products.read_raw("1").await.unwrap().is_some());
    let deleted = service.admin("DELETE", "/admin/caches/products/1").await;
    assert_eq!(deleted.status, 200, "{}", deleted.raw);
    assert_eq!(
        deleted.json,
        serde_json::json!({"cache": "products", "store": "tiered", "key": "1", "deleted": true})
    );
    assert!(products.read_raw("1").await.unwrap().is_none());
    assert!(products.read_raw("2").await.unwrap().is_some());
    assert_eq!(service.call("GET", "/products/1", None).await.status, 200);
    assert_eq!(
        products.stats().misses,
        3,
        "the deleted entry was read again"
    );

    // DELETE /caches/{name}: every entry of the cache.
    let cleared = service.admin("DELETE", "/admin/caches/products").await;
    assert_eq!(cleared.status, 200, "{}", cleared.raw);
    assert_eq!(cleared.json["cleared"], true);
    assert!(products.read_raw("1").await.unwrap().is_none());
    assert!(products.read_raw("2").await.unwrap().is_none());
    assert_eq!(service.call("GET", "/products/2", None).await.status, 200);
    assert_eq!(
        products.stats().misses,
        4,
        "the cleared entry was read again"
    );

    // A store that fails: a 502 in plain words, still without the password.
    redis.kill();
    let failed = service.admin("DELETE", "/admin/caches/products").await;
    assert_eq!(failed.status, 502, "{}", failed.raw);
    assert!(
        failed.json["error"].as_str().unwrap().contains("tiered"),
        "{}",
        failed.raw
    );
    let failed = service.admin("DELETE", "/admin/caches/products/1").await;
    assert_eq!(failed.status, 502, "{}", failed.raw);
    assert_eq!(service.admin("GET", "/admin/caches").await.status, 200);

    for raw in &service.seen {
        assert!(
            !raw.contains(PASSWORD),
            "a response shows the password: {raw}"
        );
    }
}
