// The cached value must be a `CacheValue` (Clone + Serialize + DeserializeOwned + ..).
use cachet::cacheable;

pub struct User;

#[cacheable("users")]
fn find(id: u64) -> Result<User, String> {
    let _ = id;
    Ok(User)
}

fn main() {}
