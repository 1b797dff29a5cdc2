//! The record the L2 benches cache (`benches/redis.rs`, `benches/redis_cluster.rs`,
//! `cache-backends/benches/dynamodb.rs`): a small profile, ~100 bytes encoded, so decoding
//! is part of every hit. A bench includes it with
//! `#[path = "support/profile.rs"] mod profile;`.

#![allow(dead_code)] // each bench uses a different part

use serde::{Deserialize, Serialize};

/// A small record, ~100 bytes encoded.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Profile {
    pub id: u64,
    pub name: String,
    pub email: String,
    pub roles: Vec<String>,
}

/// The profile of user `id`: what every loader returns and every check expects.
pub fn profile(id: u64) -> Profile {
    Profile {
        id,
        name: format!("user {id}"),
        email: format!("user{id}@example.org"),
        roles: vec!["reader".into(), "writer".into()],
    }
}
