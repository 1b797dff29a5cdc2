//! Grace through the L2, as two instances of a service see it, for any L2 (`tests/tiered.rs`
//! on Redis, `tests/dynamodb.rs` on DynamoDB): the first instance caches a quote, the
//! entry goes stale, the function starts failing, and a fresh instance (an empty L1) is
//! served the stale value from the L2. Included with
//! `#[path = "support/grace.rs"] mod grace;` (its cached function registers the cache
//! `quotes`, so only the tests that use it include it).

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::time::Duration;

use cachet::testing::with_manager;
use cachet::{cacheable, CacheManager};

/// What `quote` fails with while the upstream is down.
#[derive(Debug, PartialEq)]
pub struct Offline;

static QUOTE_FAILS: AtomicBool = AtomicBool::new(false);

#[cacheable("quotes")]
async fn quote(symbol: &str) -> Result<String, Offline> {
    if QUOTE_FAILS.load(SeqCst) {
        Err(Offline)
    } else {
        Ok(format!("{symbol} @ 100"))
    }
}

/// Runs the scenario on managers from `instance` (each call is a new instance; their
/// `ttl` must be shorter than 100 ms and their grace long); `l2` names the L2 in the
/// failure message.
pub async fn a_fresh_instance_is_served_the_stale_value_from_l2(
    instance: impl Fn() -> CacheManager,
    l2: &str,
) {
    QUOTE_FAILS.store(false, SeqCst);
    with_manager(instance(), async {
        assert_eq!(quote("ACME").await.unwrap(), "ACME @ 100")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    QUOTE_FAILS.store(true, SeqCst);
    let fresh_instance = instance();
    let served = with_manager(fresh_instance.clone(), quote("ACME")).await;
    QUOTE_FAILS.store(false, SeqCst);
    assert_eq!(
        served,
        Ok("ACME @ 100".to_string()),
        "the stale value from {l2}"
    );
    assert_eq!(fresh_instance.cache("quotes").unwrap().stats().stale, 1);
}
