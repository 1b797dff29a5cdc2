use cachet::{cache_put, cacheable};

#[cacheable("a", timeout = "soon", hard_timeout = "0s", eager_refresh = 1.5)]
async fn bad_values(id: u64) -> u64 {
    id
}

#[cacheable("a", eager_refresh = "80%")]
async fn not_a_fraction(id: u64) -> u64 {
    id
}

#[cache_put("a", timeout = "1s", eager_refresh = 0.5)]
async fn put_has_no_timeouts(id: u64) -> u64 {
    id
}

fn main() {}
