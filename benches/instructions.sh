#!/bin/sh
# Instructions per hit, counted by callgrind (a loaded machine does not move them):
# for each op, (instructions with N hits - instructions with 0 hits) / N. The `_1024keys`
# ops read the 1,024 resident keys in turn on one thread (a front table holds the ~79 % that
# got a slot of their own).
#
#   cargo bench --bench hit --no-run && sh benches/instructions.sh [path/to/hit-binary]
#   OPS='quick_cache_get_str cachet_sync' sh benches/instructions.sh   # some ops only
#   N=200000 sh benches/instructions.sh   # more hits: the setup's run-to-run noise (hash seeds
#                                         # drawn per process, ±15 per hit at 20,000) shrinks
set -eu
target=${CARGO_TARGET_DIR:-target}
bin=${1:-$(ls -t "$target"/release/deps/hit-* | grep -v '\.d$' | head -n 1)}
n=${N:-20000}
count() {
    CACHET_HIT_COUNT="$1:$2" valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" 2>&1 |
        sed -n 's/.*Collected : *\([0-9]*\).*/\1/p'
}
printf '| op | instructions per hit |\n|---|---:|\n'
ops=${OPS:-"moka_get_str memory_tier_get_moka quick_cache_get_str memory_tier_get_quick_cache \
    cached_sync cachet_sync cachet_sync_ttl cachet_sync_str cachet_sync_moka cached_async cachet_async cachet_async_moka \
    memory_tier_get_front cachet_sync_front cachet_sync_ttl_front cachet_sync_str_front cachet_async_front \
    memory_tier_read_quick_cache_1024keys memory_tier_read_front_1024keys \
    cachet_sync_1024keys cachet_sync_front_1024keys"}
for op in $ops; do
    base=$(count "$op" 0)
    full=$(count "$op" "$n")
    printf '| %s | %s |\n' "$op" "$(( (full - base) / n ))"
done
