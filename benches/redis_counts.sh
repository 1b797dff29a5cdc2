#!/bin/sh
# Per read of the Redis bench's 64-task rows, counts a loaded machine does not move:
# instructions (callgrind) and allocations (DHAT) of the whole bench process (its runtime,
# cachet's `cachet-io` thread; not the server), as the difference between a run of 64 x HI
# and one of 64 x LO reads of the row, over the 64 x (HI - LO) reads between them.
#
#   cargo bench --features redis --bench redis --no-run
#   sh benches/redis_counts.sh [rows] [path/to/redis-binary]    # rows: raw_get,cachet_get
#   LO=5 HI=25 PROFILE=1 sh benches/redis_counts.sh cachet_get  # and per-function instructions
#
# The mode is the bench's `redis_counts` (`benches/redis.rs`); BENCHMARKS.md, "Redis L2".
set -eu
rows=${1:-raw_get,cachet_get}
target=${CARGO_TARGET_DIR:-target}
bin=${2:-$(ls -t "$target"/release/deps/redis-* | grep -v '\.d$' | head -n 1)}
lo=${LO:-5}
hi=${HI:-25}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
reads=$((64 * (hi - lo)))
printf '| row | instructions | allocations | bytes allocated | allocations over 1,032 bytes |\n'
printf '|---|---:|---:|---:|---:|\n'
for row in $(echo "$rows" | tr ',' ' '); do
    for n in "$lo" "$hi"; do
        REDIS_ROWS=$row REDIS_COUNT_OPS=$n valgrind --tool=callgrind \
            --callgrind-out-file="$dir/$row.$n.out" "$bin" --bench redis_counts >/dev/null 2>&1
        REDIS_ROWS=$row REDIS_COUNT_OPS=$n valgrind --tool=dhat \
            --dhat-out-file="$dir/$row.$n.json" "$bin" --bench redis_counts >/dev/null 2>&1
    done
    python3 - "$dir" "$row" "$lo" "$hi" "$reads" "${PROFILE:-}" <<'PY'
import json, re, subprocess, sys
d, row, lo, hi, reads, profile = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6]

def functions(path):
    """Exclusive instructions by function, and the total, from callgrind_annotate."""
    text = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100", path],
                          capture_output=True, text=True).stdout
    out, total = {}, 0
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+) \([ \d.]+%\)\s+(\S.*)$", line)
        if not m:
            continue
        count = int(m.group(1).replace(",", ""))
        if m.group(2).startswith("PROGRAM TOTALS"):
            total = count
        elif ":" in m.group(2):
            name = m.group(2).split(" [")[0]
            out[name] = out.get(name, 0) + count
    return out, total

def allocations(path):
    """Blocks, bytes, and blocks over 1,032 bytes (glibc's per-thread cache limit)."""
    pps = json.load(open(path))["pps"]
    big = sum(p["tbk"] for p in pps if p["tbk"] and p["tb"] / p["tbk"] > 1032)
    return sum(p["tbk"] for p in pps), sum(p["tb"] for p in pps), big

(f_lo, t_lo), (f_hi, t_hi) = functions(f"{d}/{row}.{lo}.out"), functions(f"{d}/{row}.{hi}.out")
a_lo, a_hi = allocations(f"{d}/{row}.{lo}.json"), allocations(f"{d}/{row}.{hi}.json")
per = [(h - l) / reads for l, h in zip(a_lo, a_hi)]
print(f"| {row} | {(t_hi - t_lo) / reads:,.0f} | {per[0]:.1f} | {per[1]:,.0f} | {per[2]:.2f} |")
if profile:
    rows = sorted((((f_hi.get(f, 0) - f_lo.get(f, 0)) / reads, f) for f in set(f_lo) | set(f_hi)), reverse=True)
    for n, f in rows:
        if abs(n) >= 20:
            print(f"|   | {n:,.0f} | `{f[:140]}` | | |")
PY
done
