// On an impl block, a cached method's value must be a `CacheValue`, as on a function:
// reported at its return type.
use cachet::cacheable;

pub struct Secret;
struct Vault;

#[cacheable("vault")]
impl Vault {
    fn open(&self, id: u64) -> Secret {
        let _ = id;
        Secret
    }
}

fn main() {}
