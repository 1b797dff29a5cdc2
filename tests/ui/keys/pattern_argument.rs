use cachet::cacheable;

#[cacheable("pairs")]
fn sum((a, b): (u32, u32), _: u8) -> u32 {
    a + b
}

fn main() {}
