use cachet::cacheable;

cachet::caches! {
    pub USERS: u64 => String = "users", bogus = 1, ttl = "soon";
    pub OTHERS: u64 => String = "users";
}

#[cacheable(USERS, "users")]
fn find_user(id: u64) -> String {
    format!("user {id}")
}

fn main() {}
