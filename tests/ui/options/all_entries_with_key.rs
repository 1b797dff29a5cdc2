use cachet::cache_evict;

#[cache_evict("users", all_entries, key = id)]
fn delete(id: u64) {
    let _ = id;
}

#[cache_evict("users", skip(id), all_entries)]
fn delete_all(id: u64) {
    let _ = id;
}

fn main() {}
