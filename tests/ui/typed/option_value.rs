use cachet::cacheable;

#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct User;

// `Option` belongs on the function, not in the declaration: an `Option<User>`-returning
// function stores the `User` it holds (and `None` as the null marker), so its cache holds
// `User` values.
cachet::caches! {
    pub MAYBE_USERS: u64 => Option<User> = "users";
}

#[cacheable(MAYBE_USERS)]
async fn find_user(id: u64) -> Option<User> {
    (id > 0).then_some(User)
}

fn main() {}
