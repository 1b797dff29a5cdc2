use cachet::{cache_evict, cache_put, cacheable};

#[cacheable("a", tti = "0s", jitter = "soon", wait_timeout = "0s", skip_bus = "yes")]
async fn bad_values(id: u64) -> u64 {
    id
}

#[cache_put("a", wait_timeout = "1s", skip_l2_read = true)]
async fn put_does_not_wait_nor_read(id: u64) -> u64 {
    id
}

#[cache_evict("a", tti = "1m", background_l2_writes = true)]
async fn evict_stores_nothing(id: u64) {
    let _ = id;
}

fn main() {}
