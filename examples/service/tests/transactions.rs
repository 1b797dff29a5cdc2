//! After-commit cache writes and evictions against a real SQLite database: the repository's
//! `_in` methods write inside a database transaction, their cache operations are
//! `after_commit`, and `cachet::transaction` applies them only once the transaction
//! committed.
//!
//! The race they close: a reader on another connection, between the write and the commit,
//! still sees the committed (old) row and caches it; an eviction made before the commit
//! would then be undone by that read, and a put made before a rollback would leave a value
//! the database never kept. Each test checks the cache itself (the `products` entry), not
//! only what the repository answers.

use cachet::{cache_evict, CacheManager};
use cachet_service_example::{db, AppError, Product, ProductChange, ProductRepo};
use sqlx::sqlite::SqliteConnection;

/// Runs `test` against a fresh database (in a temp dir) and its repository, in the scope of
/// a fresh manager, with product 1 as seeded, read once through the repository (so cached).
async fn in_shop(test: impl AsyncFnOnce(&ProductRepo, &CacheManager, Product)) {
    let dir = tempfile::tempdir().expect("temp dir");
    let pool = db::open(&dir.path().join("shop.db"))
        .await
        .expect("database");
    let repo = ProductRepo::new(pool);
    let manager = CacheManager::builder().build().expect("manager");
    manager
        .scope(async {
            let old = repo.find(1).await.unwrap().expect("seeded");
            test(&repo, &manager, old).await;
        })
        .await;
}

/// The `products` entry of `id` as the cache holds it (`None`: no entry).
async fn cached(id: i64) -> Option<Option<Product>> {
    cachet::cache("products")
        .expect("products")
        .get::<Option<Product>>(&id)
        .await
        .expect("cache read")
}

/// The price of `id` in the database, read past the cache.
async fn price_in_db(repo: &ProductRepo, id: i64) -> i64 {
    sqlx::query_scalar("SELECT price_cents FROM products WHERE id = ?")
        .bind(id)
        .fetch_one(repo.pool())
        .await
        .expect("price")
}

fn change(of: &Product, price_cents: i64) -> ProductChange {
    ProductChange {
        name: of.name.clone(),
        category: of.category.clone(),
        price_cents,
    }
}

#[tokio::test]
async fn a_rolled_back_update_leaves_the_cache_as_it_was() {
    in_shop(async |repo, _, old| {
        assert_eq!(cached(1).await, Some(Some(old.clone())));

        // An eviction inside a transaction that rolls back.
        assert!(repo.reprice(1, 1, false).await.is_err());
        assert_eq!(cached(1).await, Some(Some(old.clone())), "not evicted");

        // A put of the new row inside a transaction that rolls back.
        let result: Result<(), AppError> = cachet::transaction(async {
            let mut tx = repo.pool().begin().await?;
            let new = repo.update_in(&mut tx, 1, &change(&old, 2)).await?;
            assert_eq!(new.map(|p| p.price_cents), Some(2));
            tx.rollback().await?;
            Err(AppError::Invalid("rolled back".into()))
        })
        .await;
        assert!(result.is_err());
        assert_eq!(cached(1).await, Some(Some(old.clone())), "not put");
        assert_eq!(price_in_db(repo, 1).await, old.price_cents);
        assert_eq!(repo.find(1).await.unwrap(), Some(old));
    })
    .await;
}

#[tokio::test]
async fn a_committed_update_evicts_and_puts() {
    in_shop(async |repo, _, old| {
        assert!(repo.reprice(1, 1234, true).await.unwrap());
        assert_eq!(cached(1).await, None, "evicted after the commit");
        assert_eq!(repo.find(1).await.unwrap().unwrap().price_cents, 1234);

        let result: Result<Option<Product>, AppError> = cachet::transaction(async {
            let mut tx = repo.pool().begin().await?;
            let new = repo.update_in(&mut tx, 1, &change(&old, 4321)).await?;
            // Reads inside see the cache as it is, not the pending put.
            assert_eq!(cached(1).await.flatten().map(|p| p.price_cents), Some(1234));
            tx.commit().await?;
            Ok(new)
        })
        .await;
        let new = result.unwrap().expect("updated");
        assert_eq!(new.price_cents, 4321);
        assert_eq!(cached(1).await, Some(Some(new)), "put after the commit");
    })
    .await;
}

/// Outside `cachet::transaction` there is no commit to wait for: `after_commit` puts and
/// evictions apply at once, as the others do.
#[tokio::test]
async fn outside_a_transaction_scope_after_commit_operations_apply_at_once() {
    in_shop(async |repo, _, old| {
        let mut tx = repo.pool().begin().await.unwrap();
        let new = repo.update_in(&mut tx, 1, &change(&old, 77)).await.unwrap();
        let new = new.expect("updated");
        assert_eq!(cached(1).await, Some(Some(new)), "put at once");
        assert!(repo.set_price_in(&mut tx, 1, 78).await.unwrap());
        assert_eq!(cached(1).await, None, "evicted at once");
        tx.commit().await.unwrap();
    })
    .await;
}

/// Reads the product `id` from another task (so another pooled connection, outside the
/// transaction's scope), as a concurrent request would.
async fn read_elsewhere(manager: &CacheManager, repo: &ProductRepo, id: i64) -> Option<Product> {
    let (manager, repo) = (manager.clone(), repo.clone());
    tokio::spawn(async move { manager.scope(repo.find(id)).await })
        .await
        .expect("reader")
        .expect("read")
}

#[tokio::test]
async fn a_read_between_the_write_and_the_commit_does_not_outlive_the_commit() {
    in_shop(async |repo, manager, old| {
        let result: Result<(), AppError> = cachet::transaction(async {
            let mut tx = repo.pool().begin().await?;
            assert!(repo.set_price_in(&mut tx, 1, 777).await?);
            // Uncommitted: another connection still reads the old row, and caches it.
            cachet::cache("products")
                .unwrap()
                .delete(&1i64)
                .await
                .unwrap();
            let seen = read_elsewhere(manager, repo, 1).await;
            assert_eq!(seen, Some(old.clone()));
            assert_eq!(cached(1).await, Some(Some(old.clone())));
            tx.commit().await?;
            Ok(())
        })
        .await;
        result.unwrap();
        // The eviction came after the commit, so the old value read meanwhile is gone.
        assert_eq!(cached(1).await, None);
        assert_eq!(repo.find(1).await.unwrap().unwrap().price_cents, 777);
    })
    .await;
}

#[tokio::test]
async fn a_read_between_a_put_and_a_rollback_never_sees_the_rolled_back_value() {
    in_shop(async |repo, manager, old| {
        let result: Result<(), AppError> = cachet::transaction(async {
            let mut tx = repo.pool().begin().await?;
            repo.update_in(&mut tx, 1, &change(&old, 5)).await?;
            // The put waits for the commit: a concurrent read gets the committed value.
            assert_eq!(read_elsewhere(manager, repo, 1).await, Some(old.clone()));
            tx.rollback().await?;
            Err(AppError::Invalid("rolled back".into()))
        })
        .await;
        assert!(result.is_err());
        assert_eq!(cached(1).await, Some(Some(old.clone())));
        assert_eq!(read_elsewhere(manager, repo, 1).await, Some(old));
    })
    .await;
}

/// The same write as `ProductRepo::set_price_in`, evicting at once (no `after_commit`).
#[cache_evict("products", key = id)]
async fn set_price_evicting_at_once(
    tx: &mut SqliteConnection,
    id: i64,
    price_cents: i64,
) -> Result<(), AppError> {
    sqlx::query("UPDATE products SET price_cents = ? WHERE id = ?")
        .bind(price_cents)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Why `after_commit` exists: evicting before the commit lets a concurrent read cache the
/// old row again, and it outlives the commit.
#[tokio::test]
async fn without_after_commit_a_read_before_the_commit_leaves_a_stale_value() {
    in_shop(async |repo, manager, old| {
        let result: Result<(), AppError> = cachet::transaction(async {
            let mut tx = repo.pool().begin().await?;
            set_price_evicting_at_once(&mut tx, 1, 888).await?;
            assert_eq!(
                cached(1).await,
                None,
                "evicted at once, inside the transaction"
            );
            assert_eq!(read_elsewhere(manager, repo, 1).await, Some(old.clone()));
            tx.commit().await?;
            Ok(())
        })
        .await;
        result.unwrap();
        assert_eq!(price_in_db(repo, 1).await, 888);
        assert_eq!(cached(1).await, Some(Some(old)), "stale after the commit");
    })
    .await;
}
