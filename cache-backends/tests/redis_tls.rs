//! `rediss://` against a real TLS-only `redis-server` with a self-signed certificate,
//! verified (not skipped): the test trusts it through `SSL_CERT_FILE`. Own test binary,
//! because it sets that process-wide variable.
#![cfg(feature = "redis-tls")]
#![allow(clippy::unwrap_used)]

#[path = "../../tests/support/redis_server.rs"]
mod redis_server;

use std::time::Duration;

use cache_backends::redis::{RedisOptions, RedisTier};
use cache_core::store::RemoteTier;
use cache_core::TierErrorKind;
use redis_server::RedisServer;

#[tokio::test]
async fn rediss_url_works_and_checks_the_certificate() {
    let server = RedisServer::start_tls();
    let opts = |url: String| {
        RedisOptions::new(url)
            .operation_timeout(Duration::from_secs(2))
            .connect_timeout(Duration::from_secs(2))
    };
    assert!(server.url().starts_with("rediss://"));

    // not trusted yet: the handshake fails, as an unavailable server
    let untrusted = RedisTier::new(&opts(server.url())).unwrap();
    let err = untrusted.get("t:c:1").await.unwrap_err();
    assert_eq!(err.kind(), TierErrorKind::Unavailable, "{err}");

    std::env::set_var("SSL_CERT_FILE", server.ca_cert());
    let tier = RedisTier::new(&opts(server.url())).unwrap();
    assert!(
        tier.describe().starts_with("redis rediss://127.0.0.1:"),
        "{}",
        tier.describe()
    );
    tier.set("t:c:1", b"over tls".to_vec(), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(tier.get("t:c:1").await.unwrap(), Some(b"over tls".to_vec()));

    // and it reconnects after a restart, over TLS again
    server.restart();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tier.get("t:c:1").await {
            Ok(v) => {
                assert_eq!(v, None);
                break;
            }
            Err(e) => assert!(std::time::Instant::now() < deadline, "{e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
