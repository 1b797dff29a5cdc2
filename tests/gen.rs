//! Generated code compiles, warning-free, for every option and form the macros accept.
//! Each function has caches of its own, so the values asserted are the bodies' whether the
//! runtime caches (it may: a second call can be a hit) or is a pass-through.
#![deny(warnings)]

use cachet::{cache_config, cache_evict, cache_put, cacheable, CacheValue};
use serde::{Deserialize, Serialize};

/// Generated paths are absolute: a local `core` (or `std`) module must not capture them.
#[allow(dead_code)]
mod core {}
#[allow(dead_code)]
mod std {}
/// A local `result`-named function does not confuse `result` in key or `unless`.
#[allow(dead_code)]
fn result() {}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
    admin: bool,
}

fn user(id: u64) -> User {
    User {
        id,
        name: format!("user{id}"),
        admin: id == 1,
    }
}

#[derive(Debug, Clone, PartialEq)]
struct DbError;

impl ::std::fmt::Display for DbError {
    fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
        f.write_str("db error")
    }
}

/// Not `Serialize`: must be skipped or kept out of the key.
struct Db {
    calls: ::std::sync::atomic::AtomicU64,
}

impl Db {
    fn new() -> Self {
        Db {
            calls: ::std::sync::atomic::AtomicU64::new(0),
        }
    }
    fn hit(&self) {
        self.calls
            .fetch_add(1, ::std::sync::atomic::Ordering::Relaxed);
    }
}

type Res<T> = ::std::result::Result<T, DbError>;

fn parse_id(s: &str) -> Res<u64> {
    s.parse().map_err(|_| DbError)
}

// ---- free async fns -------------------------------------------------------------------

/// Docs and attributes are kept.
#[cacheable("find_user")]
#[inline]
pub(crate) async fn find_user(id: u64) -> Result<User, DbError> {
    if id == 0 {
        return Err(DbError);
    }
    Ok(user(id))
}

#[cacheable("find_user_in", skip(db))]
async fn find_user_in(db: &Db, id: u64) -> Result<User, DbError> {
    db.hit();
    Ok(user(id))
}

#[cacheable("find_user_by", key = user_id)]
async fn find_user_by(db: &Db, user_id: u64, trace: &str) -> Result<User, DbError> {
    db.hit();
    let _ = trace;
    Ok(user(user_id))
}

#[cacheable("find_by_name", "find_by_name-by-name", key = (tenant, name.len()), ttl = "1m 30s")]
async fn find_by_name(tenant: u32, name: String) -> Option<User> {
    let _ = tenant;
    Some(User {
        id: 7,
        name,
        admin: false,
    })
}

#[cacheable("count-counts")]
async fn count() -> u64 {
    42
}

/// A body ending in `return` leaves the generated tail unreachable: no warning for it.
#[cacheable("count_returning-counts")]
#[allow(clippy::needless_return)]
async fn count_returning(n: u64) -> u64 {
    return n + 1;
}

#[cacheable("count_returning_sync-counts")]
#[allow(clippy::needless_return)]
fn count_returning_sync(n: u64) -> u64 {
    return n + 1;
}

#[cacheable("parse_and_find", condition = raw.len() < 10, unless = result.admin)]
async fn parse_and_find(raw: String) -> Res<User> {
    let id = parse_id(&raw)?;
    Ok(user(id))
}

#[cacheable("with_crate", crate = "cachet")]
async fn with_crate(id: u64) -> Res<User> {
    Ok(user(id))
}

#[cache_put("save_user", key = result.id)]
async fn save_user(name: String) -> Result<User, DbError> {
    Ok(User {
        id: 9,
        name,
        admin: false,
    })
}

#[cache_put("update_user", key = user.id, condition = !user.name.is_empty(), unless = result.admin, ttl = "10s")]
async fn update_user(user: User) -> Res<User> {
    // `user` is moved into the body; the key was computed before.
    Ok(user)
}

#[cache_put("put_default_key", skip(db))]
async fn put_default_key(db: &Db, id: u64) -> User {
    db.hit();
    user(id)
}

#[cache_evict("delete_user", key = id)]
async fn delete_user(id: u64) -> Result<(), DbError> {
    if id == 0 {
        return Err(DbError);
    }
    Ok(())
}

#[cache_evict("reload_all", all_entries, before_invocation)]
async fn reload_all() {}

#[cache_evict("clear_after", all_entries)]
async fn clear_after() -> Res<()> {
    Ok(())
}

#[cache_evict("evict_before", before_invocation, condition = id != 0)]
async fn evict_before(id: u64) -> Res<()> {
    let _ = id;
    Ok(())
}

#[cache_evict("evict_by_result", key = result.id)]
async fn evict_by_result(name: String) -> Res<User> {
    Ok(User {
        id: 3,
        name,
        admin: false,
    })
}

#[cache_evict("rename-by-name")]
#[cache_put("rename", key = result.id)]
async fn rename(id: u64, name: String) -> Res<User> {
    Ok(User {
        id,
        name,
        admin: false,
    })
}

/// How long a user's entry lives: admins briefly, others not at all for id 0.
fn user_ttl(u: &User) -> Option<::std::time::Duration> {
    match u.id {
        0 => None,
        _ if u.admin => Some(::std::time::Duration::from_secs(1)),
        _ => Some(::std::time::Duration::from_secs(60)),
    }
}

#[cacheable("adaptive_user", ttl_from = user_ttl(result), grace = "1h")]
async fn adaptive_user(id: u64) -> Res<User> {
    Ok(user(id))
}

#[cacheable("adaptive_fixed", ttl_from = ::std::time::Duration::from_secs(5), grace = "0s")]
async fn adaptive_fixed(id: u64) -> u64 {
    id
}

#[cache_put("adaptive_put", key = result.id, ttl_from = user_ttl(result), unless = result.admin)]
async fn adaptive_put(id: u64) -> Res<User> {
    Ok(user(id))
}

#[cacheable("adaptive_option", ttl_from = result.as_ref().map(|_| ::std::time::Duration::from_secs(9)))]
async fn adaptive_option(id: u64) -> Option<u64> {
    (id > 0).then_some(id)
}

// ---- free sync fns ----------------------------------------------------------------------

#[cacheable("lookup", ttl = "30s", condition = id > 0, unless = result.admin)]
fn lookup(id: u64) -> User {
    user(id)
}

#[cacheable("lookup_with", skip(db, f))]
fn lookup_with(db: &Db, f: impl Fn(u64) -> u64, id: u64) -> Res<User> {
    db.hit();
    let id = parse_id(&f(id).to_string())?;
    if id == 1000 {
        return Err(DbError);
    }
    Ok(user(id))
}

#[cacheable("inner_attributes-counts")]
fn inner_attributes(x: u8) -> u8 {
    #![allow(unused_variables)]
    let unused = 1;
    x
}

#[cacheable("pairs")]
fn pair(a: u8, b: &str, c: Option<i64>) -> String {
    format!("{a}{b}{c:?}")
}

#[cacheable("generic")]
fn generic_echo<T>(value: T) -> T
where
    T: CacheValue + Serialize,
{
    value
}

#[cacheable("lifetimes", key = s.len())]
fn first_word<'a>(s: &'a str) -> String {
    s.split(' ').next().unwrap_or_default().to_owned()
}

#[cacheable("patterns", key = a + b)]
fn sum((a, b): (u32, u32)) -> u32 {
    a + b
}

#[cacheable("adaptive_sync", ttl_from = &result.1, unless = result.0 == 0)]
fn adaptive_sync(id: u64) -> (u64, ::std::time::Duration) {
    (id, ::std::time::Duration::from_millis(id * 10))
}

#[cache_put("adaptive_put_sync", key = id, grace = "30s", ttl_from = ::std::time::Duration::from_secs(1))]
fn adaptive_put_sync(id: u64) -> u64 {
    id
}

#[cache_put("save_sync", key = result.id)]
fn save_sync(mut name: String) -> User {
    name.push('!');
    User {
        id: 11,
        name,
        admin: false,
    }
}

#[cache_evict("delete_sync", key = id)]
fn delete_sync(id: u64) -> Res<()> {
    if id == 0 {
        Err(DbError)?;
    }
    Ok(())
}

#[cachet::cache_evict("triple", all_entries, before_invocation)]
#[cachet::cache_evict("triple-counts", all_entries)]
#[cachet::cache_put("triple", key = result.id)]
fn triple(id: u64) -> User {
    user(id)
}

/// An attribute used only stacked under another is expanded by the outer one: its import
/// must still count as used.
mod stacked_only {
    use cachet::{cache_evict, cache_put};

    #[cache_evict("stacked-a", all_entries)]
    #[cache_put("stacked-b")]
    pub fn f(id: u8) -> u8 {
        id
    }
}

// ---- Spring parity: key generator, own manager, computed names, impl blocks -----------------

fn key_of(id: &u64, name: &str) -> String {
    format!("{id}/{name}")
}

#[cacheable("spring-generated", key_generator = key_of)]
async fn generated(id: u64, name: &str) -> u64 {
    id + name.len() as u64
}

#[cache_put("spring-generated", key_generator = crate::key_of, skip(extra))]
fn generated_put(id: u64, name: String, extra: u8) -> u64 {
    id + name.len() as u64 + u64::from(extra)
}

static OWN: ::std::sync::LazyLock<cachet::CacheManager> =
    ::std::sync::LazyLock::new(cachet::CacheManager::none);

#[cacheable("spring-own", manager = OWN)]
fn own_manager(id: u64) -> u64 {
    id
}

#[cacheable(cache_name = format!("spring-tenant-{tenant}"), skip(tenant))]
async fn per_tenant(tenant: &str, id: u64) -> Option<u64> {
    tenant.is_empty().then_some(id)
}

#[cache_evict(cache_name = "spring-evicted", key = id, condition = *result)]
fn evict_if(id: u64) -> bool {
    id > 0
}

#[cache_evict("spring-evicted", all_entries, condition = result.is_empty())]
fn evict_all_if(names: Vec<String>) -> Vec<String> {
    names
}

struct Catalog;

#[cacheable("spring-catalog", ttl = "1m")]
impl Catalog {
    fn new() -> Self {
        Catalog
    }

    async fn price(&self, id: u64) -> Option<u64> {
        Some(id)
    }

    fn size(&self) -> usize {
        3
    }

    fn set(&mut self, id: u64) -> u64 {
        id
    }
}

// ---- timeouts and eager refresh -------------------------------------------------------------

/// Converts from `CacheError`: the hard timeout returns it.
#[derive(Debug, Clone, PartialEq)]
struct Gone;

impl From<cachet::CacheError> for Gone {
    fn from(_: cachet::CacheError) -> Self {
        Gone
    }
}

/// Detachable, every timing option, and an error the hard timeout can return.
#[cacheable("timed", timeout = "200ms", hard_timeout = "2s", eager_refresh = 0.8)]
async fn timed(id: u64) -> Result<User, Gone> {
    Ok(user(id))
}

/// The runtime options issue 15 added, as annotations write them.
#[cacheable(
    "tuned",
    tti = "10m",
    jitter = "30s",
    l1_ttl = "1m",
    wait_timeout = "5s",
    background_l2_writes = true,
    skip_l2_read = false,
    skip_l2_write = false,
    skip_bus = false
)]
async fn tuned(id: u64) -> u64 {
    id
}

/// Detachable-looking but kept in its caller: an `Rc` lives across an await.
#[cacheable("attached", timeout = "200ms", detach = false)]
async fn attached(id: u64) -> u64 {
    let rc = ::std::rc::Rc::new(id);
    ::std::future::ready(()).await;
    *rc
}

/// An error that does not convert: the hard timeout waits; `unless` over `result` only.
#[cacheable("hard_any", hard_timeout = "1s", unless = result.is_none(), detach = true)]
async fn hard_any(id: u64) -> Res<Option<u64>> {
    Ok(Some(id))
}

// ---- methods ------------------------------------------------------------------------------

struct Repo {
    db: Db,
    hits: u32,
}

impl Repo {
    #[cacheable("find")]
    async fn find(&self, id: u64) -> Res<User> {
        self.db.hit();
        Ok(user(id))
    }

    #[cache_put("touch", key = id)]
    async fn touch(&mut self, id: u64) -> Res<User> {
        self.hits += 1;
        Ok(user(id))
    }

    #[cacheable("by_hits", key = self.hits)]
    fn by_hits(&self) -> User {
        user(u64::from(self.hits))
    }

    #[cache_evict("into_hits", all_entries)]
    fn into_hits(self) -> u32 {
        self.hits
    }

    #[cacheable("make")]
    fn make(id: u64) -> Self {
        let _ = id;
        Repo {
            db: Db::new(),
            hits: 0,
        }
    }
}

// `Repo` is cached by `make`, so it must be a cache value too.
impl Clone for Repo {
    fn clone(&self) -> Self {
        Repo {
            db: Db::new(),
            hits: self.hits,
        }
    }
}
impl Serialize for Repo {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.hits.serialize(s)
    }
}
impl<'de> Deserialize<'de> for Repo {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Repo {
            db: Db::new(),
            hits: u32::deserialize(d)?,
        })
    }
}

struct Service<T> {
    prefix: T,
}

#[cache_config(cache = "services")]
impl<T: ::std::fmt::Display> Service<T> {
    #[cacheable]
    async fn describe(&self, id: u64) -> String {
        format!("{}{id}", self.prefix)
    }

    #[cacheable(key = id, condition = id > 0)]
    fn describe_sync(&self, id: u64) -> String {
        format!("{}{id}", self.prefix)
    }

    // Its own names, not the block's: its unit key is not the `u64` of `services`.
    #[cacheable("own", "own_too")]
    fn own_names(&self) -> Option<String> {
        None
    }

    #[cache_evict(all_entries)]
    #[cache_put(key = id)]
    fn refresh(&mut self, id: u64) -> String {
        format!("{}{id}", self.prefix)
    }
}

#[cache_config(cache = ["a", "b"], crate = "cachet")]
impl Service<u8> {
    #[cacheable]
    fn byte(&self) -> u8 {
        self.prefix
    }
}

trait Finder {
    fn find_one(&self, id: u64) -> Res<User>;
}

impl Finder for Repo {
    #[cacheable("find_one")]
    fn find_one(&self, id: u64) -> Res<User> {
        self.db.hit();
        Ok(user(id))
    }
}

// ---- calls --------------------------------------------------------------------------------

#[tokio::test]
async fn async_free_functions_return_their_bodies_values() {
    let db = Db::new();
    assert_eq!(find_user(3).await, Ok(user(3)));
    assert_eq!(find_user(0).await, Err(DbError));
    assert_eq!(find_user_in(&db, 4).await, Ok(user(4)));
    assert_eq!(find_user_by(&db, 5, "t").await, Ok(user(5)));
    assert_eq!(
        find_by_name(1, "ann".into()).await.map(|u| u.name),
        Some("ann".into())
    );
    assert_eq!(count().await, 42);
    assert_eq!(count_returning(1).await, 2);
    assert_eq!(count_returning_sync(2), 3);
    assert_eq!(parse_and_find("6".into()).await, Ok(user(6)));
    assert_eq!(parse_and_find("x".into()).await, Err(DbError));
    assert_eq!(with_crate(2).await, Ok(user(2)));
    assert_eq!(save_user("bo".into()).await.map(|u| u.id), Ok(9));
    assert_eq!(update_user(user(8)).await, Ok(user(8)));
    assert_eq!(put_default_key(&db, 8).await, user(8));
    assert_eq!(delete_user(1).await, Ok(()));
    assert_eq!(delete_user(0).await, Err(DbError));
    reload_all().await;
    assert_eq!(clear_after().await, Ok(()));
    assert_eq!(evict_before(2).await, Ok(()));
    assert_eq!(evict_by_result("c".into()).await.map(|u| u.id), Ok(3));
    assert_eq!(rename(4, "d".into()).await.map(|u| u.name), Ok("d".into()));
    assert_eq!(adaptive_user(1).await, Ok(user(1)));
    assert_eq!(adaptive_user(0).await, Ok(user(0)));
    assert_eq!(adaptive_fixed(5).await, 5);
    assert_eq!(adaptive_put(2).await, Ok(user(2)));
    assert_eq!(adaptive_option(0).await, None);
    assert_eq!(adaptive_option(3).await, Some(3));
    assert_eq!(db.calls.load(::std::sync::atomic::Ordering::Relaxed), 3);
}

#[test]
fn sync_free_functions_return_their_bodies_values() {
    let db = Db::new();
    assert_eq!(lookup(1), user(1));
    assert_eq!(lookup_with(&db, |x| x * 2, 3), Ok(user(6)));
    assert_eq!(lookup_with(&db, |x| x, 1000), Err(DbError));
    assert_eq!(pair(1, "b", Some(3)), "1bSome(3)");
    assert_eq!(inner_attributes(4), 4);
    assert_eq!(generic_echo(vec![1u8, 2]), vec![1, 2]);
    assert_eq!(generic_echo("s".to_owned()), "s");
    assert_eq!(first_word("hello world"), "hello");
    assert_eq!(sum((2, 3)), 5);
    assert_eq!(save_sync("e".into()).name, "e!");
    assert_eq!(adaptive_sync(3).0, 3);
    assert_eq!(adaptive_put_sync(4), 4);
    assert_eq!(delete_sync(1), Ok(()));
    assert_eq!(delete_sync(0), Err(DbError));
    assert_eq!(triple(5), user(5));
    assert_eq!(stacked_only::f(2), 2);
    // Another key than `generated(1, "ab")`'s in the other test: the two share a cache, and
    // the put's value (not the body's) was read there when this test ran first.
    assert_eq!(generated_put(2, "ab".into(), 3), 7);
    assert_eq!(own_manager(4), 4);
    assert!(evict_if(1));
    assert_eq!(evict_all_if(vec![]), Vec::<String>::new());
    let mut catalog = Catalog::new();
    assert_eq!(catalog.size(), 3);
    assert_eq!(catalog.set(2), 2);
}

#[tokio::test]
async fn spring_parity_forms_return_their_bodies_values() {
    assert_eq!(generated(1, "ab").await, 3);
    assert_eq!(per_tenant("", 5).await, Some(5));
    assert_eq!(per_tenant("t", 5).await, None);
    assert_eq!(Catalog::new().price(9).await, Some(9));
}

#[tokio::test]
async fn methods_return_their_bodies_values() {
    let mut repo = Repo::make(1);
    assert_eq!(repo.find(2).await, Ok(user(2)));
    assert_eq!(repo.touch(3).await, Ok(user(3)));
    assert_eq!(repo.by_hits(), user(1));
    assert_eq!(repo.find_one(4), Ok(user(4)));
    assert_eq!(repo.into_hits(), 1);

    let mut s = Service { prefix: "s" };
    assert_eq!(s.describe(1).await, "s1");
    assert_eq!(s.describe_sync(2), "s2");
    assert_eq!(s.own_names(), None);
    assert_eq!(s.refresh(3), "s3");
    assert_eq!(Service { prefix: 7u8 }.byte(), 7);
}

#[tokio::test]
async fn annotated_futures_are_send() {
    fn assert_send<F: ::std::future::Future + Send>(f: F) -> F {
        f
    }
    let repo = Repo::make(0);
    assert_eq!(assert_send(repo.find(1)).await, Ok(user(1)));
    assert_eq!(assert_send(find_user(1)).await, Ok(user(1)));
    assert_eq!(
        tokio::spawn(find_by_name(2, "x".into()))
            .await
            .ok()
            .flatten()
            .map(|u| u.id),
        Some(7)
    );
}

#[test]
fn every_annotation_is_registered_with_its_options() {
    use ::std::time::Duration;
    use cachet::__private::{inventory, Declaration, OperationKind};
    let ops: Vec<_> = inventory::iter::<Declaration>
        .into_iter()
        .map(|d| d.0)
        .filter(|op| op.file.ends_with("gen.rs"))
        .collect();
    let find = |name: &str| -> Vec<_> { ops.iter().filter(|op| op.function == name).collect() };

    let op = find("find_user")[0];
    assert_eq!(op.kind, OperationKind::Cacheable);
    assert_eq!(op.caches, ["find_user"]);
    assert_eq!(op.value_type, "User");
    assert_eq!(op.module, module_path!());
    assert_eq!(op.options.ttl, None);
    assert_eq!(
        find("find_by_name")[0].caches,
        ["find_by_name", "find_by_name-by-name"]
    );
    assert_eq!(
        find("find_by_name")[0].options.ttl,
        Some(Duration::from_secs(90))
    );
    assert_eq!(
        find("find_by_name")[0].value_type,
        "User",
        "stored unwrapped"
    );
    assert_eq!(find("lookup")[0].options.ttl, Some(Duration::from_secs(30)));
    assert_eq!(find("parse_and_find")[0].value_type, "Res<User>");
    assert_eq!(find("update_user")[0].kind, OperationKind::Put);
    assert_eq!(
        find("reload_all")[0].kind,
        OperationKind::Evict {
            all_entries: true,
            before_invocation: true
        }
    );
    assert_eq!(
        find("evict_before")[0].kind,
        OperationKind::Evict {
            all_entries: false,
            before_invocation: true
        }
    );
    let mut triple: Vec<_> = find("triple")
        .iter()
        .map(|op| (op.caches, op.kind))
        .collect();
    triple.sort_by_key(|(c, _)| c[0]);
    assert_eq!(triple.len(), 3);
    assert_eq!(find("describe")[0].caches, ["services"]);
    assert_eq!(find("own_names")[0].caches, ["own", "own_too"]);
    assert_eq!(find("refresh").len(), 2);
    assert_eq!(find("byte")[0].caches, ["a", "b"]);
    assert_eq!(find("generic_echo")[0].value_type, "T");
    assert_eq!(
        find("adaptive_user")[0].options.grace,
        Some(Duration::from_secs(3600))
    );
    assert_eq!(find("adaptive_user")[0].options.ttl, None);
    assert_eq!(
        find("adaptive_fixed")[0].options.grace,
        Some(Duration::ZERO)
    );
    assert_eq!(
        find("adaptive_put_sync")[0].options.grace,
        Some(Duration::from_secs(30))
    );
    assert_eq!(find("find_user")[0].options.grace, None);
    let timed = find("timed")[0];
    assert_eq!(timed.options.timeout, Some(Duration::from_millis(200)));
    assert_eq!(timed.options.hard_timeout, Some(Duration::from_secs(2)));
    assert_eq!(timed.options.eager_refresh, Some(0.8));
    let tuned = find("tuned")[0].options;
    assert_eq!(tuned.tti, Some(Duration::from_secs(600)));
    assert_eq!(tuned.jitter, Some(Duration::from_secs(30)));
    assert_eq!(tuned.l1_ttl, Some(Duration::from_secs(60)));
    assert_eq!(tuned.wait_timeout, Some(Duration::from_secs(5)));
    assert_eq!(tuned.background_l2_writes, Some(true));
    assert_eq!(tuned.skip_bus, Some(false));
    // The line is the function's, for messages that point users at it.
    let line = find("count")[0].line;
    let src = include_str!("gen.rs");
    let at = src.lines().nth(line as usize - 1).unwrap_or_default();
    assert!(at.contains("async fn count()"), "line {line}: {at}");
}

#[tokio::test]
async fn timing_options() {
    assert_eq!(timed(3).await, Ok(user(3)));
    assert_eq!(attached(4).await, 4);
    assert_eq!(tuned(6).await, 6);
    assert_eq!(hard_any(5).await, Ok(Some(5)));
}
