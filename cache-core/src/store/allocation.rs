//! What a heap allocation costs, for entry weights: the bytes asked for, rounded as
//! malloc serves them.

/// The bytes an allocation of `len` bytes takes: with an 8-byte header, in 16-byte
/// steps, 32 at least (glibc's malloc; other allocators round as much or more), and none
/// for no bytes (nothing is allocated).
pub(crate) const fn allocated(len: usize) -> usize {
    match len {
        0 => 0,
        1..=24 => 32,
        _ => (len + 8).next_multiple_of(16),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_allocation_takes_its_bytes_and_a_header_in_16_byte_steps() {
        assert_eq!(allocated(0), 0);
        assert_eq!(allocated(1), 32);
        assert_eq!(allocated(24), 32);
        assert_eq!(allocated(25), 48);
        assert_eq!(allocated(40), 48);
        assert_eq!(allocated(41), 64);
    }
}
