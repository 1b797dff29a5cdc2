//! Pruning: deleting rows past their expiry, on demand (`cachet prune`) and, with
//! `prune_interval`, in the background.
//!
//! Expired rows are already misses (every read checks `expires_at`); pruning only gives
//! their space back. It deletes in batches of at most [`BATCH`] rows, each its own
//! statement bounded by `operation_timeout`, so a large table is never locked for long
//! and other writers interleave between batches.

use std::sync::{Arc, Weak};
use std::time::Duration;

use cache_core::TierError;

use super::dialect::BATCH;
use super::pool::{bounded, on_conn, Database};
use crate::background;

/// Deletes every expired row of both tables, batch by batch; how many rows went.
pub(crate) async fn prune(db: &Arc<Database>) -> Result<u64, TierError> {
    db.run_bounded("DELETE expired", None, |db| async move {
        let limit = db.operation_timeout;
        let mut total = 0;
        for sql in [&db.sql.prune_entries, &db.sql.prune_tags] {
            loop {
                let deleted = bounded(limit, async {
                    on_conn!(db, None, c => sqlx::query(sql).execute(c).await.map(|r| r.rows_affected()))
                })
                .await?;
                total += deleted;
                if deleted < BATCH as u64 {
                    break;
                }
            }
        }
        Ok(total)
    })
    .await
}

/// Starts pruning every `interval` on the backend runtime, for as long as the tier lives
/// (the task holds it weakly and ends once it is dropped). Faults are logged, never fatal.
pub(crate) fn start(db: &Arc<Database>, interval: Duration) {
    let Ok(handle) = background::handle() else {
        tracing::warn!(target = %db.target, "cachet: cannot start the background pruning of a database store");
        return;
    };
    let weak: Weak<Database> = Arc::downgrade(db);
    handle.spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await; // the first tick is immediate: wait one interval first
        loop {
            ticks.tick().await;
            let Some(db) = weak.upgrade() else { return };
            match prune(&db).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(target = %db.target, rows = n, "cachet: pruned expired rows"),
                Err(e) => tracing::warn!(target = %db.target, error = %e, "cachet: pruning expired rows failed"),
            }
        }
    });
}
