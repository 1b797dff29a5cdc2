use cachet::cacheable;

cachet::caches! {
    pub USERS: u64 => String = "users";
}

#[cacheable(USRES)]
fn find_user(id: u64) -> String {
    format!("user {id}")
}

fn main() {}
