#!/usr/bin/env python3
"""Prints the medians of the last `cargo bench --bench hit` run and the target ratios,
as BENCHMARKS.md shows them. Reads criterion's estimates under the target directory:

    python3 benches/table.py [TARGET_DIR]     # default: $CARGO_TARGET_DIR or ./target
"""
import json
import os
import sys

root = os.path.join(
    sys.argv[1] if len(sys.argv) > 1 else os.environ.get("CARGO_TARGET_DIR", "target"),
    "criterion",
)


def median(group, bench):
    """Median time of one iteration, in ns (None when the bench did not run)."""
    # criterion writes a bench id "a/b" to the directory "a_b".
    path = os.path.join(root, group, bench.replace("/", "_"), "new", "estimates.json")
    try:
        with open(path) as f:
            return json.load(f)["median"]["point_estimate"]
    except FileNotFoundError:
        return None


def ns(v):
    return "—" if v is None else (f"{v:.1f} ns" if v < 1000 else f"{v / 1000:.2f} µs")


def mops(v, per_iter=2):
    return "—" if v is None else f"{per_iter / v * 1e3:.1f} M/s"


def kops(v, per_iter):
    return "—" if v is None else f"{per_iter / v * 1e6:.1f} k/s"


def ratio(a, b):
    return "—" if a is None or b is None else f"{a / b:.2f}"


rows = {
    "hit_sync": [
        "moka_get_u64", "moka_get_str", "memory_tier_get_moka", "quick_cache_get_u64",
        "quick_cache_get_str", "memory_tier_get_quick_cache", "cached_macro",
        "cachet_cacheable", "cachet_cacheable_moka", "cachet_get_polled_once",
    ],
    "hit_async": [
        "moka_get_u64", "quick_cache_get_u64", "cached_macro", "cachet_cacheable",
        "cachet_cacheable_moka", "cachet_get",
    ],
}
print("| group | bench | median |")
print("|---|---|---:|")
for group, benches in rows.items():
    for b in benches:
        print(f"| {group} | {b} | {ns(median(group, b))} |")
two = [
    "moka_get_u64", "memory_tier_get_moka", "quick_cache_get_u64", "memory_tier_get_quick_cache",
    "cached_macro_sync", "cachet_cacheable_sync", "cachet_cacheable_sync_moka",
    "cached_macro_async", "cachet_cacheable_async", "cachet_cacheable_async_moka",
    "cachet_get_async",
]
print()
print("| hit_2threads | median per 2 ops | total ops/s |")
print("|---|---:|---:|")
for b in two:
    m = median("hit_2threads", b)
    print(f"| {b} | {ns(m)} | {mops(m)} |")
print()
print("| key shape | cachet encode_key | bincode 1 serialize | format! | cachet into reused buf | bincode 1 into reused vec | ratio cachet/bincode | ratio, reused |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for shape in ["u64", "u64_string16", "struct"]:
    c = median("key", f"{shape}/cachet_encode_key")
    b = median("key", f"{shape}/bincode1_serialize")
    f = median("key", f"{shape}/format")
    ci = median("key", f"{shape}/cachet_encode_key_into_reused")
    bi = median("key", f"{shape}/bincode1_serialize_into_reused")
    print(f"| {shape} | {ns(c)} | {ns(b)} | {ns(f)} | {ns(ci)} | {ns(bi)} | {ratio(c, b)} | {ratio(ci, bi)} |")

m = lambda g, b: median(g, b)
print()
print("| target | ratio | limit |")
print("|---|---:|---:|")
for suffix, engine, raw_str, tier in [
    ("", "quick_cache", "quick_cache_get_str", "memory_tier_get_quick_cache"),
    ("_moka", "moka", "moka_get_str", "memory_tier_get_moka"),
]:
    sync, asyn = m("hit_sync", "cachet_cacheable" + suffix), m("hit_async", "cachet_cacheable" + suffix)
    print(f"| {engine}: #[cacheable] sync hit / raw {engine} get (same stored key) | {ratio(sync, m('hit_sync', raw_str))} | ≤ 1.25 |")
    print(f"| {engine}: #[cacheable] sync hit / cachet's memory tier get | {ratio(sync, m('hit_sync', tier))} | (≤ 1.25) |")
    print(f"| {engine}: #[cacheable] sync hit / cached #[cached] sync hit | {ratio(sync, m('hit_sync', 'cached_macro'))} | ≤ 2 |")
    print(f"| {engine}: #[cacheable] async hit / cached #[cached] async hit | {ratio(asyn, m('hit_async', 'cached_macro'))} | ≤ 1 |")
    two_sync = "cachet_cacheable_sync" + suffix
    two_async = "cachet_cacheable_async" + suffix
    print(f"| {engine}: 2 threads, sync: cachet ops/s / cached ops/s | {ratio(m('hit_2threads', 'cached_macro_sync'), m('hit_2threads', two_sync))} | > 1 |")
    print(f"| {engine}: 2 threads, async: cachet ops/s / cached ops/s | {ratio(m('hit_2threads', 'cached_macro_async'), m('hit_2threads', two_async))} | > 1 |")

# Redis L2 (`cargo bench --features redis --bench redis`). The ratios that BENCHMARKS.md
# quotes come from the bench's own paired rounds (the `redis_paired` table it prints);
# these are criterion's sequential medians, which the machine's load moves between rows.
redis = ["raw_get", "raw_getrange", "cached_async_redis_cache_get", "cached_concurrent_cached",
         "cachet_get", "cachet_cacheable"]
if median("redis_hit", "raw_get") is not None or median("redis_hit_64tasks", "raw_get") is not None:
    print()
    print("| redis bench | 1 at a time | ratio to raw_get | 64 tasks, per 64 reads | reads/s | ratio to raw_get |")
    print("|---|---:|---:|---:|---:|---:|")
    for b in redis:
        one, raw_one = median("redis_hit", b), median("redis_hit", "raw_get")
        many, raw_many = median("redis_hit_64tasks", b), median("redis_hit_64tasks", "raw_get")
        # time ratios inverted, so > 1 means faster than raw, as for throughput
        print(f"| {b} | {ns(one)} | {ratio(raw_one, one)} | {ns(many)} | {kops(many, 64)} | {ratio(raw_many, many)} |")
