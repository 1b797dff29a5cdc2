use cachet::cacheable;

cachet::caches! {
    pub USERS: u64 => String = "users";
}

#[cacheable(USERS)]
fn find_user(id: u32) -> String {
    format!("user {id}")
}

fn main() {}
