//! Names set in code that become part of stored keys (prefixes, cache names) are held to
//! the rule configuration holds them to: a prefix `a:b` would otherwise alias store `a`'s
//! cache `b` (issue 16, fault 6).

use cachet::store::MapTier;
use cachet::{CacheError, CacheManager, StoreBuilder};

/// The `expected ...` part of a configuration error, and its field.
fn config_error(err: CacheError) -> (String, String) {
    match err {
        CacheError::Config {
            field, expected, ..
        } => (field, expected),
        other => panic!("expected a configuration error, got {other}"),
    }
}

#[test]
fn a_prefix_set_in_code_is_validated_as_in_toml() {
    let from_code = CacheManager::builder()
        .prefix("a:b")
        .store("main", StoreBuilder::new().l1(MapTier::new()))
        .build()
        .unwrap_err();
    let (field, expected) = config_error(from_code);
    assert_eq!(field, "prefix");
    let from_toml = CacheManager::from_toml_str(
        "prefix = \"a:b\"\n[stores.main]\nl1 = { driver = \"memory\" }",
    )
    .unwrap_err();
    assert_eq!(config_error(from_toml), (field, expected.clone()));
    assert!(
        expected.contains("expected a key prefix without whitespace or any of `: # * ? [ ] \\`"),
        "{expected}"
    );
    assert!(expected.contains("which contains `:`"), "{expected}");
}

#[test]
fn a_store_prefix_set_in_code_is_validated() {
    for prefix in ["a:b", "", "two words", "glob*"] {
        let err = CacheManager::builder()
            .store(
                "main",
                StoreBuilder::new().prefix(prefix).l1(MapTier::new()),
            )
            .build()
            .unwrap_err();
        let text = err.to_string();
        let (field, expected) = config_error(err);
        assert_eq!(field, "stores.main.prefix", "{text}");
        assert!(expected.starts_with("expected a key prefix"), "{text}");
    }
}

#[test]
fn cache_and_store_names_set_in_code_are_validated() {
    let store = || StoreBuilder::new().l1(MapTier::new());
    let cases: Vec<(cachet::CacheManagerBuilder, &str)> = vec![
        (CacheManager::builder().store("a:b", store()), "stores.a:b"),
        (
            CacheManager::builder()
                .store("main", store())
                .cache_ttl("us ers", std::time::Duration::from_secs(1)),
            "caches.us ers",
        ),
        (
            CacheManager::builder()
                .store("main", store())
                .cache_names(["users", "a*"]),
            "cache_names[1]",
        ),
    ];
    for (builder, want) in cases {
        let (field, expected) = config_error(builder.build().unwrap_err());
        assert_eq!(field, want, "{expected}");
        assert!(
            expected.contains("without whitespace or any of"),
            "{expected}"
        );
    }
    let manager = CacheManager::builder()
        .store("main", store())
        .build()
        .unwrap();
    for name in ["users:admins", "", "a b", "x[1]"] {
        let err = manager.cache(name).unwrap_err();
        assert!(matches!(err, CacheError::InvalidName { .. }), "{err}");
        assert!(err.to_string().contains("part of stored keys"), "{err}");
    }
}
