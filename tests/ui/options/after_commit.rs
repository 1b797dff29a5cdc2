use cachet::cacheable;

#[cacheable("users", after_commit)]
fn find_user(id: u64) -> String {
    format!("user {id}")
}

fn main() {}
