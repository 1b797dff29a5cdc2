//! Payload codecs on a typical struct: encoded size, and encode and decode time (the
//! whole envelope: header, payload, checks), every codec in one run so BENCHMARKS.md
//! compares them on one machine state.
//!
//! `cargo bench -p cache-core --features bincode,json --bench codecs`
//!
//! Instruction counts, which a loaded machine does not move: with
//! `CACHET_CODEC_COUNT=CODEC:OP:N` set (`OP` = `encode` or `decode`), the binary runs only
//! `N` of that operation and exits; callgrind on it for `N` and for `0` gives instructions
//! per operation as the difference over `N`:
//!
//! ```text
//! for c in msgpack bincode json; do for op in encode decode; do for n in 0 10000; do
//!   CACHET_CODEC_COUNT=$c:$op:$n valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/deps/codecs-* 2>&1 | grep Collected; done; done; done
//! ```

use std::hint::black_box;

use cache_core::codec::{fingerprint, EnvelopeMeta, ValueCodec, DEFAULT_MAX_VALUE_SIZE};
use criterion::{criterion_group, Criterion};
use serde::{Deserialize, Serialize};

/// The struct cache-core/src/codec/mod.rs measured the formats on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
    email: String,
    roles: Vec<u32>,
    manager: Option<u64>,
}

fn user() -> User {
    User {
        id: 42,
        name: "Alice".into(),
        email: "alice@example.com".into(),
        roles: (1..=10).collect(),
        manager: Some(7),
    }
}

fn codecs(c: &mut Criterion) {
    let value = user();
    let meta = EnvelopeMeta::new(fingerprint::<User>(), Some(1_700_000_000_000), None);
    let all = [
        ValueCodec::msgpack(),
        ValueCodec::bincode(),
        ValueCodec::json(),
    ];
    for codec in &all {
        let bytes = codec.encode(&value, &meta).unwrap();
        let (back, _) = codec
            .decode::<User>(&bytes, fingerprint::<User>(), DEFAULT_MAX_VALUE_SIZE)
            .unwrap();
        assert_eq!(back, value);
        println!(
            "codec {}: {} bytes ({} payload + envelope header)",
            codec.name(),
            bytes.len(),
            bytes.len() - cache_core::codec::HEADER_LEN
        );
    }
    let mut encode = c.benchmark_group("codec_encode");
    for codec in &all {
        encode.bench_function(codec.name(), |b| {
            b.iter(|| codec.encode(black_box(&value), &meta).unwrap())
        });
    }
    encode.finish();
    let mut decode = c.benchmark_group("codec_decode");
    for codec in &all {
        let bytes = codec.encode(&value, &meta).unwrap();
        decode.bench_function(codec.name(), |b| {
            b.iter(|| {
                codec
                    .decode::<User>(
                        black_box(&bytes),
                        fingerprint::<User>(),
                        DEFAULT_MAX_VALUE_SIZE,
                    )
                    .unwrap()
            })
        });
    }
    decode.finish();
}

/// `CACHET_CODEC_COUNT=CODEC:OP:N`: runs `N` operations and nothing else.
fn count_mode() -> bool {
    let Ok(spec) = std::env::var("CACHET_CODEC_COUNT") else {
        return false;
    };
    let mut parts = spec.split(':');
    let (Some(name), Some(op), Some(n)) = (parts.next(), parts.next(), parts.next()) else {
        panic!("CACHET_CODEC_COUNT=CODEC:OP:N, found {spec}");
    };
    let codec = ValueCodec::builtin(name)
        .unwrap()
        .expect("a built-in codec");
    let n: u64 = n.parse().expect("a count");
    let value = user();
    let meta = EnvelopeMeta::new(fingerprint::<User>(), Some(1_700_000_000_000), None);
    let bytes = codec.encode(&value, &meta).unwrap();
    for _ in 0..n {
        match op {
            "encode" => {
                black_box(codec.encode(black_box(&value), &meta).unwrap());
            }
            "decode" => {
                black_box(
                    codec
                        .decode::<User>(
                            black_box(&bytes),
                            fingerprint::<User>(),
                            DEFAULT_MAX_VALUE_SIZE,
                        )
                        .unwrap(),
                );
            }
            other => panic!("OP is encode or decode, found {other}"),
        }
    }
    true
}

criterion_group!(benches, codecs);

fn main() {
    if count_mode() {
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
