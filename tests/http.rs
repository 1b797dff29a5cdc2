//! `cachet::http` over real HTTP on a loopback port, as an application mounts it: how a
//! path segment names a key, the manager in effect per request, JSON everywhere.
//! (The service example's `tests/admin.rs` runs it behind a token, on Redis.)
#![cfg(feature = "axum")]

use std::net::SocketAddr;

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::Router;
use cachet::CacheManager;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Serves `router` on a free loopback port until the test ends.
async fn serve(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

/// One HTTP/1.1 request over a fresh connection: the status and the JSON body.
async fn call(addr: SocketAddr, method: &str, path: &str) -> (u16, Value) {
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    );
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, serde_json::from_str(body).unwrap())
}

fn memory() -> CacheManager {
    CacheManager::builder()
        .memory_store("main")
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_path_segment_is_the_key_text_percent_decoded() {
    let manager = memory();
    let users = manager.cache("users").unwrap();
    users.set(&(42u64, "alice"), &1u8).await.unwrap();
    users.set(&"a:b", &2u8).await.unwrap();
    users.set(&"a/b c", &3u8).await.unwrap();
    users.set(&7u64, &4u8).await.unwrap();
    let addr = serve(Router::new().nest("/admin", cachet::http::router_for(manager))).await;

    for (segment, key, text) in [
        ("42:alice", json!([42, "alice"]), "42:alice"),
        ("a%5C:b", json!("a:b"), "a\\:b"),
        ("a%2Fb%20c", json!("a/b c"), "a/b c"),
    ] {
        let (status, body) = call(addr, "DELETE", &format!("/admin/caches/users/{segment}")).await;
        assert_eq!(status, 200, "{segment}: {body}");
        assert_eq!(body["key"], text, "{segment} names {key}");
    }
    let gone = |v: Option<u8>| v.is_none();
    let v: Option<u8> = users.get(&(42u64, "alice")).await.unwrap();
    assert!(gone(v));
    let v: Option<u8> = users.get(&"a:b").await.unwrap();
    assert!(gone(v));
    let v: Option<u8> = users.get(&"a/b c").await.unwrap();
    assert!(gone(v));
    let v: Option<u8> = users.get(&7u64).await.unwrap();
    assert_eq!(v, Some(4), "other keys stay");

    let (status, body) = call(addr, "DELETE", "/admin/caches/users").await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"cache": "users", "store": "main", "cleared": true})
        )
    );
    let v: Option<u8> = users.get(&7u64).await.unwrap();
    assert_eq!(v, None);

    let (status, body) = call(addr, "GET", "/admin/caches/users").await;
    assert_eq!(status, 200);
    assert_eq!(body["name"], "users");
    assert_eq!(
        body["store"],
        json!({"name": "main", "prefix": "cachet", "shared": null})
    );
    assert_eq!(body["stats"]["puts"], 4);
    assert_eq!(body["stats"]["hits"], 1);
    assert_eq!(body["stats"]["misses"], 4);
    assert_eq!(body["stats"]["hit_ratio"], 0.2);
}

#[tokio::test]
async fn unknown_caches_are_404_and_never_made() {
    let manager = memory();
    let addr = serve(cachet::http::router_for(manager.clone())).await;
    assert_eq!(
        call(addr, "GET", "/caches").await,
        (200, json!({"caches": []}))
    );
    for (method, path) in [
        ("GET", "/caches/carts"),
        ("DELETE", "/caches/carts"),
        ("DELETE", "/caches/carts/1"),
    ] {
        let (status, body) = call(addr, method, path).await;
        assert_eq!(status, 404, "{method} {path}");
        assert_eq!(body, json!({"error": "no cache named `carts`"}));
    }
    assert!(!manager.knows_cache("carts"), "asking made no cache");
    manager.cache("carts").unwrap();
    let (status, list) = call(addr, "GET", "/caches").await;
    assert_eq!(status, 200);
    assert_eq!(list["caches"][0]["name"], "carts");
}

#[tokio::test]
async fn router_acts_on_the_manager_in_effect_for_each_request() {
    let (first, second) = (memory(), memory());
    first.cache("first_only").unwrap();
    second.cache("second_only").unwrap();
    let scoped = |manager: CacheManager| {
        cachet::http::router().layer(middleware::from_fn(move |request: Request, next: Next| {
            let manager = manager.clone();
            async move { manager.scope(next.run(request)).await }
        }))
    };
    let app = Router::new()
        .nest("/one", scoped(first))
        .nest("/two", scoped(second));
    let addr = serve(app).await;
    assert_eq!(call(addr, "GET", "/one/caches/first_only").await.0, 200);
    assert_eq!(call(addr, "GET", "/one/caches/second_only").await.0, 404);
    assert_eq!(call(addr, "GET", "/two/caches/second_only").await.0, 200);
}
