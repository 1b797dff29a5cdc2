#!/bin/sh
# Where one hit op's instructions go, per function and per hit: callgrind runs the op
# N times and 0 times (the same setup), and each function's exclusive count is the
# difference over N, so the setup (1,024 resident keys in every cache) cancels out.
#
#   cargo bench --bench hit --no-run && sh benches/profile.sh cachet_sync [N] [path/to/hit-binary]
#
# The ops are those of `benches/hit.rs`'s `count_mode` (see `benches/instructions.sh`).
set -eu
op=$1
n=${2:-20000}
target=${CARGO_TARGET_DIR:-target}
bin=${3:-$(ls -t "$target"/release/deps/hit-* | grep -v '\.d$' | head -n 1)}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
for count in 0 "$n"; do
    CACHET_HIT_COUNT="$op:$count" valgrind --tool=callgrind \
        --callgrind-out-file="$dir/$count.out" "$bin" >/dev/null 2>&1
    callgrind_annotate --inclusive=no --threshold=100 "$dir/$count.out" >"$dir/$count.txt"
done
python3 - "$dir/0.txt" "$dir/$n.txt" "$n" <<'EOF'
import re
import sys

def functions(path):
    """Exclusive instruction count by function, from callgrind_annotate's table."""
    out = {}
    for line in open(path, encoding="utf-8", errors="replace"):
        m = re.match(r"\s*([\d,]+) \([ \d.]+%\)\s+(\S.*)$", line)
        if m and ":" in m.group(2):
            name = m.group(2).split(" [")[0]
            out[name] = out.get(name, 0) + int(m.group(1).replace(",", ""))
    return out

base, full, n = functions(sys.argv[1]), functions(sys.argv[2]), int(sys.argv[3])
rows = sorted(((full.get(f, 0) - base.get(f, 0)) / n, f) for f in set(base) | set(full))
rows = [r for r in rows if abs(r[0]) >= 0.5]
print(f"| per hit | function |\n|---:|---|")
for per, f in sorted(rows, reverse=True):
    print(f"| {per:.1f} | `{f[:150]}` |")
print(f"| **{sum(r[0] for r in rows):.1f}** | total (functions of >= 0.5 per hit) |")
EOF
