use cachet::cacheable;

cachet::caches! {
    pub USERS: u64 => String = "users";
}

#[cacheable(USERS)]
async fn find_user(id: u64) -> Result<Vec<u8>, std::io::Error> {
    Ok(id.to_le_bytes().to_vec())
}

fn main() {}
