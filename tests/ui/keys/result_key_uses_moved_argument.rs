// A key over `result` runs after the body: it cannot use an argument the body consumed.
use cachet::cache_put;

#[cache_put("users", key = (tenant.clone(), result))]
fn save(tenant: String, id: u64) -> u64 {
    drop(tenant);
    id
}

fn main() {}
