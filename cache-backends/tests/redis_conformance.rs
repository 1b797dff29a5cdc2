//! The L2 driver conformance suite (`cachet::testing::conformance`) on the Redis tier,
//! against a real `redis-server` started by the harness — one server, a Redis Cluster
//! (3 masters, 3 replicas), the master of a Sentinel setup, and one Valkey server.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)]

#[path = "../../tests/support/redis_server.rs"]
mod redis_server;

use std::sync::Arc;
use std::time::Duration;

use cache_backends::redis::{RedisOptions, RedisTier};
use cache_core::store::{BoxFuture, RemoteTier};
use cache_core::testing::conformance::{self, Capabilities, Expiry, Fixture};
use redis_server::{RedisCluster, RedisSentinel, RedisServer};

const MAX_VALUE_SIZE: usize = 64 * 1024;

struct RedisFixture {
    tier: Arc<dyn RemoteTier>,
    /// Reads what the server holds, straight from it (for a cluster, from the node the
    /// key's slot is on).
    probe: Probe,
    client: redis::Client,
}

#[allow(clippy::large_enum_variant)] // one per fixture
enum Probe {
    Node(redis::Client),
    Cluster(redis::cluster::ClusterClient),
}

fn options(opts: RedisOptions) -> RedisOptions {
    opts.operation_timeout(Duration::from_secs(5))
        .max_value_size(MAX_VALUE_SIZE)
}

impl RedisFixture {
    fn new(server: &RedisServer) -> Self {
        let client = redis::Client::open(server.url()).unwrap();
        Self {
            tier: Arc::new(RedisTier::new(&options(RedisOptions::new(server.url()))).unwrap()),
            probe: Probe::Node(client.clone()),
            client,
        }
    }

    /// The tier on a cluster, seeing the cluster through a raw cluster client.
    fn cluster(cluster: &RedisCluster) -> Self {
        Self {
            tier: Arc::new(
                RedisTier::new(&options(RedisOptions::cluster(cluster.urls()))).unwrap(),
            ),
            probe: Probe::Cluster(redis::cluster::ClusterClient::new(cluster.urls()).unwrap()),
            client: redis::Client::open(cluster.urls()[0].as_str()).unwrap(),
        }
    }

    /// The tier through the Sentinels, seeing the master they name.
    fn sentinel(ha: &RedisSentinel) -> Self {
        let master = format!("redis://127.0.0.1:{}/0", ha.master_port());
        let client = redis::Client::open(master).unwrap();
        let opts = RedisOptions::sentinel(ha.sentinel_urls(), ha.service());
        Self {
            tier: Arc::new(RedisTier::new(&options(opts)).unwrap()),
            probe: Probe::Node(client.clone()),
            client,
        }
    }
}

impl Fixture for RedisFixture {
    fn tier(&self) -> Arc<dyn RemoteTier> {
        self.tier.clone()
    }

    fn expiry_of<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Expiry> {
        Box::pin(async move {
            let mut pttl = redis::cmd("PTTL");
            pttl.arg(key);
            let pttl: i64 = match &self.probe {
                Probe::Node(client) => {
                    let mut c = client.get_multiplexed_async_connection().await.unwrap();
                    pttl.query_async(&mut c).await.unwrap()
                }
                Probe::Cluster(client) => {
                    let mut c = client.get_async_connection().await.unwrap();
                    pttl.query_async(&mut c).await.unwrap()
                }
            };
            match pttl {
                -2 => Expiry::Absent,
                -1 => Expiry::Never,
                ms => Expiry::In(Duration::from_millis(ms.max(0) as u64)),
            }
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
async fn the_redis_tier_passes_the_conformance_suite() {
    let server = RedisServer::start();
    conformance::run_all(&RedisFixture::new(&server)).await;
}

/// On a cluster: keys, tag sets and locks on different slots and masters; clears and
/// scans over every master.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_tier_passes_the_conformance_suite_on_a_cluster() {
    let cluster = RedisCluster::start();
    conformance::run_all(&RedisFixture::cluster(&cluster)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_tier_passes_the_conformance_suite_through_sentinel() {
    let ha = RedisSentinel::start();
    conformance::run_all(&RedisFixture::sentinel(&ha)).await;
}

/// Valkey, a Redis-compatible server, takes every command the driver sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_tier_passes_the_conformance_suite_on_valkey() {
    let server = RedisServer::start_valkey();
    conformance::run_all(&RedisFixture::new(&server)).await;
}

/// A tier that breaks one promise of the suite, to prove the suite notices.
struct Broken {
    inner: Arc<dyn RemoteTier>,
    client: redis::Client,
    fault: Fault,
}

#[derive(Clone, Copy)]
enum Fault {
    /// `clear_scope` deletes every key starting with the scope's base, separator or not
    /// (what an unescaped `LIKE 'base%'` does).
    WideningClear,
    /// `set` stores the value with no expiry.
    NoExpiry,
    /// `set_tagged` lists the key for the entry's TTL only, not for `tags_ttl` (what every
    /// driver did before `tags_ttl`): an entry kept by `touch` falls out of its tags.
    ShortMemberships,
    /// `touch` sets the expiry (a plain `PEXPIRE`, as every driver did before it was
    /// raise-only): a touch from an older copy cuts a newer, longer entry short.
    LoweringTouch,
    /// `set_tagged` lists the key for `tags_ttl` as given, even when shorter than `ttl`
    /// (not counted as `ttl`): the entry outlives its memberships.
    ShortTagsTtl,
}

impl RemoteTier for Broken {
    fn get<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, cache_core::TierError>> {
        self.inner.get(key)
    }
    fn set<'a>(
        &'a self,
        key: &'a str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), cache_core::TierError>> {
        match self.fault {
            Fault::NoExpiry => Box::pin(async move {
                let mut c = self
                    .client
                    .get_multiplexed_async_connection()
                    .await
                    .unwrap();
                redis::cmd("SET")
                    .arg(key)
                    .arg(value)
                    .query_async::<()>(&mut c)
                    .await
                    .unwrap();
                Ok(())
            }),
            Fault::WideningClear
            | Fault::ShortMemberships
            | Fault::LoweringTouch
            | Fault::ShortTagsTtl => self.inner.set(key, value, ttl),
        }
    }
    fn touch<'a>(
        &'a self,
        key: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, cache_core::TierError>> {
        match self.fault {
            Fault::ShortMemberships | Fault::ShortTagsTtl => self.inner.touch(key, ttl),
            Fault::LoweringTouch => Box::pin(async move {
                let mut c = self
                    .client
                    .get_multiplexed_async_connection()
                    .await
                    .unwrap();
                let renewed: i64 = redis::cmd("PEXPIRE")
                    .arg(key)
                    .arg(ttl.as_millis() as u64)
                    .query_async(&mut c)
                    .await
                    .unwrap();
                Ok(renewed == 1)
            }),
            // Renews nothing (the trait's default touch).
            Fault::WideningClear | Fault::NoExpiry => Box::pin(async { Ok(false) }),
        }
    }
    fn set_tagged<'a>(
        &'a self,
        key: &'a str,
        value: Vec<u8>,
        ttl: Duration,
        tag_keys: &'a [String],
        tags_ttl: Duration,
    ) -> BoxFuture<'a, Result<(), cache_core::TierError>> {
        match self.fault {
            Fault::ShortMemberships => self.inner.set_tagged(key, value, ttl, tag_keys, ttl),
            // What the Redis tier does (sets raised, never lowered), but for `tags_ttl`
            // as given: the tier itself would count a shorter one as `ttl`.
            Fault::ShortTagsTtl => Box::pin(async move {
                let mut c = self
                    .client
                    .get_multiplexed_async_connection()
                    .await
                    .unwrap();
                let mut pipe = redis::pipe();
                pipe.cmd("SET")
                    .arg(key)
                    .arg(value)
                    .arg("PX")
                    .arg(ttl.as_millis() as u64);
                for tag in tag_keys {
                    pipe.cmd("SADD").arg(tag).arg(key);
                    for flag in ["NX", "GT"] {
                        pipe.cmd("PEXPIRE")
                            .arg(tag)
                            .arg(tags_ttl.as_millis() as u64)
                            .arg(flag);
                    }
                }
                pipe.query_async::<()>(&mut c).await.unwrap();
                Ok(())
            }),
            _ => self.inner.set_tagged(key, value, ttl, tag_keys, tags_ttl),
        }
    }
    fn tagged_keys<'a>(
        &'a self,
        tag_keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<String>, cache_core::TierError>> {
        self.inner.tagged_keys(tag_keys)
    }
    fn delete_tagged<'a>(
        &'a self,
        keys: &'a [String],
        tag_keys: &'a [String],
    ) -> BoxFuture<'a, Result<(), cache_core::TierError>> {
        self.inner.delete_tagged(keys, tag_keys)
    }
    fn delete_many<'a>(
        &'a self,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<(), cache_core::TierError>> {
        self.inner.delete_many(keys)
    }
    fn clear_scope<'a>(
        &'a self,
        scope: &'a cache_core::store::Scope,
    ) -> BoxFuture<'a, Result<(), cache_core::TierError>> {
        match self.fault {
            Fault::WideningClear => Box::pin(async move {
                let mut c = self
                    .client
                    .get_multiplexed_async_connection()
                    .await
                    .unwrap();
                let keys: Vec<String> = redis::cmd("KEYS")
                    .arg(format!("{}*", scope.base()))
                    .query_async(&mut c)
                    .await
                    .unwrap();
                if !keys.is_empty() {
                    redis::cmd("DEL")
                        .arg(keys)
                        .query_async::<()>(&mut c)
                        .await
                        .unwrap();
                }
                Ok(())
            }),
            Fault::NoExpiry
            | Fault::ShortMemberships
            | Fault::LoweringTouch
            | Fault::ShortTagsTtl => self.inner.clear_scope(scope),
        }
    }
    fn describe(&self) -> String {
        "broken".into()
    }
}

struct BrokenFixture {
    redis: RedisFixture,
    tier: Arc<dyn RemoteTier>,
    capabilities: Capabilities,
}

impl BrokenFixture {
    fn new(server: &RedisServer, fault: Fault, capabilities: Capabilities) -> Self {
        let redis = RedisFixture::new(server);
        let tier = Arc::new(Broken {
            inner: redis.tier(),
            client: redis.client.clone(),
            fault,
        });
        Self {
            redis,
            tier,
            capabilities,
        }
    }
}

impl Fixture for BrokenFixture {
    fn tier(&self) -> Arc<dyn RemoteTier> {
        self.tier.clone()
    }
    fn expiry_of<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Expiry> {
        self.redis.expiry_of(key)
    }
    fn max_value_size(&self) -> usize {
        MAX_VALUE_SIZE
    }
    fn capabilities(&self) -> Capabilities {
        self.capabilities
    }
}

/// The suite fails tiers that break its promises, naming the check: a tier whose
/// optional operations answer though it claims none of them, a clear that widens past its
/// scope, a write without an expiry, a touch that renews nothing, a touch that lowers an
/// expiry, tag memberships that end with the entry's first TTL or with a `tags_ttl`
/// shorter than the entry's TTL.
#[tokio::test]
async fn the_suite_catches_broken_tiers() {
    let server = RedisServer::start();
    // The Redis tier claimed as having no tags, lock, scan or touch: they answer, so it lies.
    let redis = RedisFixture::new(&server);
    let understated = BrokenFixture {
        tier: redis.tier(),
        redis,
        capabilities: Capabilities::none(),
    };
    for (name, failure) in [
        ("lock", catch(conformance::lock(&understated)).await),
        ("tags", catch(conformance::tags(&understated)).await),
        ("scan", catch(conformance::scan(&understated)).await),
        ("touch", catch(conformance::touch(&understated)).await),
    ] {
        assert!(
            failure.contains(&format!("conformance check `{name}` failed")),
            "{failure}"
        );
    }
    let widening = BrokenFixture::new(&server, Fault::WideningClear, Capabilities::none());
    let failure = catch(conformance::clear_scopes(&widening)).await;
    assert!(
        failure.contains("conformance check `clear_scopes` failed"),
        "{failure}"
    );
    assert!(failure.contains("outside it"), "{failure}");
    let forever = BrokenFixture::new(&server, Fault::NoExpiry, Capabilities::none());
    let failure = catch(conformance::every_key_expires(&forever)).await;
    assert!(failure.contains("has no expiry on the server"), "{failure}");
    // A tier that claims touch but renews nothing (the default `touch`, as the
    // DynamoDB tier had before it renewed expiries).
    let idle = BrokenFixture::new(&server, Fault::NoExpiry, Capabilities::all());
    let failure = catch(conformance::touch(&idle)).await;
    assert!(
        failure.contains("touching a live entry answered false"),
        "{failure}"
    );
    // Tag memberships written for the entry's TTL rather than its full lifetime (every
    // driver before `tags_ttl`): a tagged entry kept alive by `touch` (time to idle)
    // falls out of its tag, and `delete_by_tag` no longer finds it.
    let short = BrokenFixture::new(&server, Fault::ShortMemberships, Capabilities::all());
    let failure = catch(conformance::tags(&short)).await;
    assert!(
        failure.contains("conformance check `tags` failed")
            && failure.contains("memberships last `tags_ttl`"),
        "{failure}"
    );
    // A touch that sets the expiry rather than raising it: one computed from an older
    // copy cuts short a newer entry another instance wrote meanwhile.
    let lowering = BrokenFixture::new(&server, Fault::LoweringTouch, Capabilities::all());
    let failure = catch(conformance::touch(&lowering)).await;
    assert!(
        failure.contains("conformance check `touch` failed")
            && failure.contains("for less than it has left"),
        "{failure}"
    );
    // A `tags_ttl` shorter than the entry's TTL taken as given: the entry outlives its
    // memberships, and `delete_by_tag` stops finding it while it is served.
    let short = BrokenFixture::new(&server, Fault::ShortTagsTtl, Capabilities::all());
    let failure = catch(conformance::tags(&short)).await;
    assert!(
        failure.contains("conformance check `tags` failed")
            && failure.contains("shorter than its TTL"),
        "{failure}"
    );
}

/// The panic message of a check that must fail.
async fn catch(check: impl std::future::Future<Output = ()>) -> String {
    use futures_util::FutureExt;
    let outcome = std::panic::AssertUnwindSafe(check).catch_unwind().await;
    let payload = outcome.expect_err("the check passed a tier that breaks its promise");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}
