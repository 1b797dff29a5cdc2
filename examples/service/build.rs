//! `sqlx::migrate!` embeds `migrations/` at compile time; rebuild when it changes
//! (what the sqlx documentation asks of crates that embed migrations).

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
