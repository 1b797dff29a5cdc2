use cachet::cacheable;

cachet::caches! {
    pub ORDERS: (u64, String) => u32 = "orders";
}

#[cacheable(ORDERS)]
fn total(customer: u64) -> u32 {
    customer as u32
}

#[cacheable(ORDERS)]
fn total_of(customer: u64, reference: &[u8]) -> u32 {
    customer as u32 + reference.len() as u32
}

fn main() {}
