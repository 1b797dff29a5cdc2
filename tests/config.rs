//! Managers from TOML configuration: stores, per-cache options, errors naming file and field.

#[path = "support/temp_dir.rs"]
mod temp_dir;

use std::time::Duration;

use cachet::{CacheError, CacheManager};

#[tokio::test]
async fn a_memory_store_from_toml() {
    let manager = CacheManager::from_toml_str(
        r#"
        default_store = "local"
        prefix = "shop"
        ttl = "10m"

        [stores.local]
        l1 = { driver = "memory", max_entries = 1000 }

        [stores.off]
        driver = "none"

        [caches.audit]
        store = "off"

        [caches.sessions]
        ttl = "50ms"
        "#,
    )
    .unwrap();
    let users = manager.cache("users").unwrap();
    assert_eq!(users.store_name(), "local");
    users.set(&1u64, &"ann".to_string()).await.unwrap();
    assert!(users.has(&1u64).await.unwrap());

    let audit = manager.cache("audit").unwrap();
    assert_eq!(audit.store_name(), "off");
    audit.set(&1u64, &1u8).await.unwrap();
    assert!(audit.missing(&1u64).await.unwrap());

    let sessions = manager.cache("sessions").unwrap();
    sessions.set(&1u64, &1u8).await.unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert!(sessions.missing(&1u64).await.unwrap());
}

#[test]
fn a_size_bounded_store_from_toml() {
    let manager = CacheManager::from_toml_str(
        "[stores.m]\nl1 = { driver = \"memory\", max_size = \"64mb\" }",
    )
    .unwrap();
    assert_eq!(manager.default_store_name(), "m");
}

#[test]
fn an_empty_configuration_is_the_embedded_default() {
    let manager = CacheManager::from_toml_str("").unwrap();
    assert_eq!(manager.store_names(), vec!["memory".to_string()]);
}

fn error_of(toml: &str) -> String {
    CacheManager::from_toml_str(toml).unwrap_err().to_string()
}

#[test]
fn errors_name_the_field_and_what_was_expected() {
    let e = error_of("ttl = \"5 parsecs\"");
    assert!(e.contains("ttl"), "{e}");
    let e = error_of("tll = \"5m\"");
    assert!(e.contains("tll"), "{e}");
    let e = error_of("[stores.m]\nl1 = { driver = \"memory\", max_size = \"lots\" }");
    assert!(e.contains("stores.m.l1.max_size"), "{e}");
    let e = error_of("[stores.m]\nl1 = { driver = \"memory\", max_entry = 5 }");
    assert!(e.contains("stores.m.l1.max_entry"), "{e}");
    let e = error_of("[stores.m]\nl1 = { driver = \"mongo\" }");
    assert!(
        e.contains("stores.m.l1.driver") && e.contains("mongo"),
        "{e}"
    );
    let e = error_of("[stores.a]\ndriver = \"none\"\n[stores.b]\ndriver = \"none\"");
    assert!(e.contains("default_store"), "{e}");
    let e = error_of("default_store = \"x\"\n[stores.a]\ndriver = \"none\"");
    assert!(e.contains("default_store"), "{e}");
}

#[test]
fn file_errors_name_the_file() {
    let dir = temp_dir::TempDir::new("config-test");
    let path = dir.join("cachet.toml");
    std::fs::write(&path, "[caches.users]\nttl = 5\n").unwrap();
    let e = CacheManager::from_toml_file(&path).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, CacheError::Config { .. }), "{e:?}");
    assert!(
        text.contains("cachet.toml") && text.contains("caches.users.ttl"),
        "{text}"
    );
    let missing = CacheManager::from_toml_file(dir.join("absent.toml")).unwrap_err();
    assert!(missing.to_string().contains("absent.toml"), "{missing}");
}
