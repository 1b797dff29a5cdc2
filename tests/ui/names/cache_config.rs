use cachet::{cache_config, cacheable};

pub struct Repo;

#[cache_config(cache = ["ok", "bad*"])]
impl Repo {
    #[cacheable]
    fn find(&self, id: u64) -> u64 {
        id
    }
}

pub struct Other;

#[cache_config]
impl Other {}

#[cache_config(cache = "users")]
fn not_an_impl() {}

fn main() {}
