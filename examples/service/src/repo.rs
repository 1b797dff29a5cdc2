//! The product repository: SQL over the pool, cached with cachet's annotations.
//!
//! Two caches, both named in `cachet.toml`:
//! - `products`: one entry per id, `Some(product)` or `None` (a missing product is cached
//!   too, so repeated 404s do not reach the database);
//! - `products_by_category`: one entry per category, the list of its products.
//!
//! A write keeps both coherent: it puts or evicts the product's entry, and evicts every
//! list, since a product can leave one category for another (its old category is not
//! known without reading the row first).
//!
//! The `_in` methods write inside a caller's database transaction. Their cache writes and
//! evictions are `after_commit`: inside [`cachet::transaction`] they apply only once the
//! transaction's future returns `Ok` (after the caller committed), and are dropped when it
//! fails, so a rolled-back change never reaches the cache, and a read made before the commit
//! cannot leave the old value cached after it ([`ProductRepo::reprice`] shows the pattern).

use cachet::{cache_config, cache_evict, cache_put, cacheable};
use serde::{Deserialize, Serialize};
use sqlx::sqlite::{SqliteConnection, SqlitePool};

use crate::error::AppError;

/// A product of the catalogue, as stored in the `products` table and served as JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Product {
    /// Primary key.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// The category the product is listed under.
    pub category: String,
    /// Price in cents (integers: no rounding).
    pub price_cents: i64,
}

/// The fields of a product a client sends to create or replace it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductChange {
    /// Display name.
    pub name: String,
    /// The category to list the product under.
    pub category: String,
    /// Price in cents; not negative.
    pub price_cents: i64,
}

impl ProductChange {
    fn validate(&self) -> Result<(), AppError> {
        if self.price_cents < 0 {
            return Err(AppError::Invalid(
                "`price_cents` must not be negative".into(),
            ));
        }
        if self.name.trim().is_empty() || self.category.trim().is_empty() {
            return Err(AppError::Invalid(
                "`name` and `category` must not be empty".into(),
            ));
        }
        Ok(())
    }
}

/// Products in SQLite. Cheap to clone (the pool is shared). `&self` is never part of a
/// cache key: keys are the ids and categories.
///
/// ```no_run
/// # async fn demo() -> Result<(), cachet_service_example::AppError> {
/// use cachet_service_example::{db, ProductRepo};
/// let repo = ProductRepo::new(db::open(std::path::Path::new("shop.db")).await?);
/// let first = repo.find(1).await?;          // the database, then the `products` cache
/// # let _ = first; Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ProductRepo {
    pool: SqlitePool,
}

#[cache_config(cache = "products")]
impl ProductRepo {
    /// A repository over `pool` (migrated: see [`crate::db::open`]).
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }

    /// The product `id`, or `None`; cached under `id` in `products`.
    #[cacheable]
    pub async fn find(&self, id: i64) -> Result<Option<Product>, AppError> {
        Ok(
            sqlx::query_as("SELECT id, name, category, price_cents FROM products WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// The products of `category`, by id; cached under the category in
    /// `products_by_category`.
    #[cacheable("products_by_category")]
    pub async fn list_by_category(&self, category: &str) -> Result<Vec<Product>, AppError> {
        Ok(sqlx::query_as(
            "SELECT id, name, category, price_cents FROM products WHERE category = ? ORDER BY id",
        )
        .bind(category)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Inserts a product and returns it. Evicts its id's entry (a `None` cached by an
    /// earlier lookup) and the lists.
    #[cache_evict(key = result.id)]
    #[cache_evict("products_by_category", all_entries)]
    pub async fn create(&self, change: &ProductChange) -> Result<Product, AppError> {
        change.validate()?;
        Ok(sqlx::query_as(
            "INSERT INTO products (name, category, price_cents) VALUES (?, ?, ?)
             RETURNING id, name, category, price_cents",
        )
        .bind(&change.name)
        .bind(&change.category)
        .bind(change.price_cents)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Replaces the product `id` and returns the new row (`None`: there is no such
    /// product). The result is put into `products` under `id`, so the next read is served
    /// from the cache and is the new value; the lists are evicted.
    #[cache_put(key = id)]
    #[cache_evict("products_by_category", all_entries)]
    pub async fn update(
        &self,
        id: i64,
        change: &ProductChange,
    ) -> Result<Option<Product>, AppError> {
        change.validate()?;
        Ok(update_row(&self.pool, id, change).await?)
    }

    /// Replaces the product `id` inside the caller's transaction `tx`. Its new value is put
    /// into `products` and the lists are evicted after the commit (`after_commit`): inside
    /// [`cachet::transaction`], only if the transaction's future returns `Ok`.
    #[cache_put(key = id, after_commit)]
    #[cache_evict("products_by_category", all_entries, after_commit)]
    pub async fn update_in(
        &self,
        tx: &mut SqliteConnection,
        id: i64,
        change: &ProductChange,
    ) -> Result<Option<Product>, AppError> {
        change.validate()?;
        Ok(update_row(&mut *tx, id, change).await?)
    }

    /// Sets the price of the product `id` inside the caller's transaction `tx`; its entry
    /// and the lists are evicted after the commit (`after_commit`).
    #[cache_evict(key = id, after_commit)]
    #[cache_evict("products_by_category", all_entries, after_commit)]
    pub async fn set_price_in(
        &self,
        tx: &mut SqliteConnection,
        id: i64,
        price_cents: i64,
    ) -> Result<bool, AppError> {
        let done = sqlx::query("UPDATE products SET price_cents = ? WHERE id = ?")
            .bind(price_cents)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Sets the price of the product `id` in one database transaction, committed when
    /// `commit` holds and rolled back otherwise (as a failed step later in the transaction
    /// would); the cache is evicted only once the transaction committed.
    ///
    /// ```no_run
    /// # async fn demo(repo: cachet_service_example::ProductRepo) -> Result<(), cachet_service_example::AppError> {
    /// repo.reprice(1, 1200, true).await?;      // committed: `products` 1 evicted after the commit
    /// # Ok(()) }
    /// ```
    pub async fn reprice(&self, id: i64, price_cents: i64, commit: bool) -> Result<bool, AppError> {
        cachet::transaction(async {
            let mut tx = self.pool.begin().await?;
            let found = self.set_price_in(&mut tx, id, price_cents).await?;
            if !commit {
                tx.rollback().await?;
                return Err(AppError::Invalid("rolled back".into()));
            }
            tx.commit().await?;
            Ok(found)
        })
        .await
    }

    /// The pool, for callers running their own transactions around the `_in` methods.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Deletes the product `id`; `false` if there was none. Evicts its entry and the lists
    /// once the row is gone.
    #[cache_evict(key = id)]
    #[cache_evict("products_by_category", all_entries)]
    pub async fn delete(&self, id: i64) -> Result<bool, AppError> {
        let done = sqlx::query("DELETE FROM products WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

/// The one `UPDATE` of a product, returning the new row (`None`: there is no such product),
/// over the pool ([`ProductRepo::update`]) or inside a caller's transaction
/// ([`ProductRepo::update_in`]).
async fn update_row<'e>(
    db: impl sqlx::SqliteExecutor<'e>,
    id: i64,
    change: &'e ProductChange,
) -> Result<Option<Product>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE products SET name = ?, category = ?, price_cents = ? WHERE id = ?
         RETURNING id, name, category, price_cents",
    )
    .bind(&change.name)
    .bind(&change.category)
    .bind(change.price_cents)
    .bind(id)
    .fetch_optional(db)
    .await
}
