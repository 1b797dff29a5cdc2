//! The bus's wire format: what one instance tells the others, keys only.
//!
//! ```text
//! offset  size  field
//!      0     1  version (1)
//!      1    16  publishing instance id (random per bus)
//!     17     1  kind: 0 = keys, 1 = scope, 2 = all
//!     18     …  keys:  u32 LE count, then per key u32 LE length + UTF-8 bytes
//!               scope: u32 LE length + UTF-8 bytes
//!               all:   nothing
//! ```
//!
//! No values ever travel, so a forged message can at worst evict. Anything that does not
//! parse exactly (other version, bad kind, lengths past the end, trailing bytes, invalid
//! UTF-8, more than [`MAX_MESSAGE_SIZE`] bytes) is refused.

use cache_core::store::{Invalidation, Scope};

/// Version byte of the messages this build writes and reads.
pub const MESSAGE_VERSION: u8 = 1;
/// The largest message read or written: 256 KiB. Larger key lists are split.
pub const MAX_MESSAGE_SIZE: usize = 256 * 1024;

/// Bytes identifying one bus instance.
pub(crate) type InstanceId = [u8; 16];

const HEADER: usize = 1 + 16 + 1;

/// Why a message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    Oversized,
    UnknownVersion,
    Garbage,
}

/// Encodes an invalidation into one or more messages, each at most `MAX_MESSAGE_SIZE`.
/// `None` if a single key is too long to fit in a message at all.
#[cfg(any(feature = "redis", test))]
pub(crate) fn encode(from: &InstanceId, inv: &Invalidation) -> Option<Vec<Vec<u8>>> {
    encode_within(from, inv, MAX_MESSAGE_SIZE)
}

/// Encodes an invalidation into one or more messages, each at most `max` bytes (a
/// transport's own limit, e.g. PostgreSQL's `NOTIFY` payload). `None` if a single key is
/// too long to fit in a message at all.
pub(crate) fn encode_within(
    from: &InstanceId,
    inv: &Invalidation,
    max: usize,
) -> Option<Vec<Vec<u8>>> {
    let max = max.min(MAX_MESSAGE_SIZE);
    let header = |kind: u8| {
        let mut m = Vec::with_capacity(64);
        m.push(MESSAGE_VERSION);
        m.extend_from_slice(from);
        m.push(kind);
        m
    };
    let put_str = |m: &mut Vec<u8>, s: &str| -> Option<()> {
        m.extend_from_slice(&u32::try_from(s.len()).ok()?.to_le_bytes());
        m.extend_from_slice(s.as_bytes());
        Some(())
    };
    match inv {
        Invalidation::All => Some(vec![header(2)]),
        Invalidation::Scope(scope) => {
            let mut m = header(1);
            put_str(&mut m, scope.base())?;
            (m.len() <= max).then(|| vec![m])
        }
        Invalidation::Keys(keys) => {
            let mut out = Vec::new();
            let mut rest = keys.as_slice();
            while !rest.is_empty() {
                // take as many keys as fit
                let mut size = HEADER + 4;
                let mut n = 0;
                for k in rest {
                    let add = 4 + k.len();
                    if size + add > max {
                        break;
                    }
                    size += add;
                    n += 1;
                }
                if n == 0 {
                    return None;
                }
                let mut m = header(0);
                m.extend_from_slice(&u32::try_from(n).ok()?.to_le_bytes());
                for k in &rest[..n] {
                    put_str(&mut m, k)?;
                }
                out.push(m);
                rest = &rest[n..];
            }
            Some(out)
        }
    }
}

/// A fresh instance id: 16 bytes from std's `RandomState` (seeded by the OS), mixed with
/// the time and the process id.
pub(crate) fn random_id() -> InstanceId {
    use std::hash::{BuildHasher, Hasher};
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut id = [0u8; 16];
    for (i, chunk) in id.chunks_mut(8).enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_usize(i);
        h.write_u128(nanos);
        h.write_u32(std::process::id());
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    id
}

/// Decodes a message: who sent it, and what to drop.
pub(crate) fn decode(bytes: &[u8]) -> Result<(InstanceId, Invalidation), Refused> {
    if bytes.len() > MAX_MESSAGE_SIZE {
        return Err(Refused::Oversized);
    }
    let (&version, rest) = bytes.split_first().ok_or(Refused::Garbage)?;
    if version != MESSAGE_VERSION {
        return Err(Refused::UnknownVersion);
    }
    let mut r = Reader(rest);
    let from: InstanceId = r.take(16)?.try_into().map_err(|_| Refused::Garbage)?;
    let inv = match r.take(1)?[0] {
        0 => {
            let count = r.u32()? as usize;
            // every key takes at least 4 bytes, so the count cannot exceed that
            if count > r.0.len() / 4 {
                return Err(Refused::Garbage);
            }
            let mut keys = Vec::with_capacity(count);
            for _ in 0..count {
                keys.push(r.string()?);
            }
            Invalidation::Keys(keys)
        }
        1 => Invalidation::Scope(Scope::new(r.string()?)),
        2 => Invalidation::All,
        _ => return Err(Refused::Garbage),
    };
    if !r.0.is_empty() {
        return Err(Refused::Garbage);
    }
    Ok((from, inv))
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Refused> {
        if self.0.len() < n {
            return Err(Refused::Garbage);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, Refused> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self) -> Result<String, Refused> {
        let len = self.u32()? as usize;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| Refused::Garbage)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const ID: InstanceId = [7; 16];

    fn round_trip(inv: Invalidation) {
        let msgs = encode(&ID, &inv).unwrap();
        assert_eq!(msgs.len(), 1);
        assert_eq!(decode(&msgs[0]).unwrap(), (ID, inv));
    }

    #[test]
    fn every_kind_round_trips() {
        round_trip(Invalidation::All);
        round_trip(Invalidation::Scope(Scope::new("app:users#admins")));
        round_trip(Invalidation::Keys(vec![
            "app:users:1".into(),
            "app:users:é".into(),
        ]));
        // nothing to tell: no message at all
        assert!(encode(&ID, &Invalidation::Keys(vec![])).unwrap().is_empty());
    }

    #[test]
    fn golden_vector() {
        let m = encode(&ID, &Invalidation::Keys(vec!["a:b".into()])).unwrap();
        let mut expected = vec![1u8];
        expected.extend_from_slice(&[7; 16]);
        expected.extend_from_slice(&[0, 1, 0, 0, 0, 3, 0, 0, 0, b'a', b':', b'b']);
        assert_eq!(m, [expected]);
    }

    #[test]
    fn large_key_lists_are_split_and_keep_every_key() {
        let keys: Vec<String> = (0..50_000).map(|i| format!("app:users:{i:010}")).collect();
        let msgs = encode(&ID, &Invalidation::Keys(keys.clone())).unwrap();
        assert!(msgs.len() > 1);
        let mut back = Vec::new();
        for m in &msgs {
            assert!(m.len() <= MAX_MESSAGE_SIZE);
            match decode(m).unwrap().1 {
                Invalidation::Keys(k) => back.extend(k),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(back, keys);
        assert!(encode(&ID, &Invalidation::Keys(vec!["x".repeat(MAX_MESSAGE_SIZE)])).is_none());
    }

    #[test]
    fn bad_messages_are_refused() {
        let good = encode(&ID, &Invalidation::Keys(vec!["k".into()]))
            .unwrap()
            .remove(0);
        assert_eq!(decode(&[]), Err(Refused::Garbage));
        assert_eq!(decode(b"hello"), Err(Refused::UnknownVersion));
        assert_eq!(
            decode(&vec![1u8; MAX_MESSAGE_SIZE + 1]),
            Err(Refused::Oversized)
        );
        for len in 0..good.len() {
            assert!(decode(&good[..len]).is_err(), "prefix {len}");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(decode(&trailing), Err(Refused::Garbage));
        let mut huge_count = good[..HEADER].to_vec();
        huge_count.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&huge_count), Err(Refused::Garbage));
        let mut bad_kind = good.clone();
        bad_kind[17] = 9;
        assert_eq!(decode(&bad_kind), Err(Refused::Garbage));
        let mut bad_utf8 = good;
        let last = bad_utf8.len() - 1;
        bad_utf8[last] = 0xff;
        assert_eq!(decode(&bad_utf8), Err(Refused::Garbage));
    }
}
