use cachet::cache_evict;

#[cache_evict("tokens", key = id, ttl_from = std::time::Duration::from_secs(1), grace = "1h")]
fn revoke(id: u64) {
    let _ = id;
}

fn main() {}
