#!/usr/bin/env bash
# Warm `cargo capsule check` benchmark on benches/real-project (target: at
# most 1 s). The project is copied to a scratch directory (check --bless
# writes capsule.lock into it). Measured, each N times, wall clock:
#   plain     `cargo build` on an up-to-date target dir (the baseline: what
#             any cargo command costs when nothing changed)
#   warm      `check` with Cargo.lock and sources unchanged (manifest cache hit)
#   checkout  `check` of a second copy of the project with an empty target
#             dir and --cache-dir pointing at the first one's cache
#   no-cache  `check` with the manifest cache emptied but the target dir and
#             the scan cache kept (cargo's no-op build plus a warm scan)
# The first `check --bless` (cold: sandboxed build and scan) is timed once.
#
# Usage: benches/check-bench.sh [--runs N]
#
# Environment:
#   CAPSULE    command, split on spaces (default: "target/release/cargo-capsule
#              capsule", brought up to date with `cargo build --release`)
#   BENCH_DIR  where copies, target dirs, logs and the fake HOME go (default:
#              a new directory under ${TMPDIR:-/tmp}); BENCH_KEEP=1 keeps it
set -euo pipefail

bench_name=check-bench
runs=5
# shellcheck source=benches/common.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/common.sh"

while [[ $# -gt 0 ]]; do
    runs_option "$@"
    [[ $consumed -gt 0 ]] || die "unknown argument: $1 (see --help)"
    shift "$consumed"
done
check_runs

script_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
cd -- "$script_dir/.."
capsule_command always
setup_bench_dir capsule-check-bench
export HOME="$bench_dir/home"
rm -rf -- "$bench_dir/project" "$bench_dir/checkout"
cp -r benches/real-project "$bench_dir/project"
cp -r benches/real-project "$bench_dir/checkout"

# Runs a command, prints its wall time; the log goes to $bench_dir/$1.log.
timed() {
    local log="$bench_dir/$1.log"
    shift
    local start
    start=$(date +%s.%N)
    "$@" >"$log" 2>&1 || { tail -20 "$log" >&2; die "failed: $* (see $log)"; }
    awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.3f", e - s }'
}

project="$bench_dir/project/Cargo.toml"
checkout="$bench_dir/checkout/Cargo.toml"
target="$bench_dir/target"
plain_target="$bench_dir/plain"

timed plain-cold cargo build --manifest-path "$project" --target-dir "$plain_target" >/dev/null
plain=()
for _ in $(seq "$runs"); do
    plain+=("$(timed plain cargo build --manifest-path "$project" --target-dir "$plain_target")")
done

cold=$(timed cold "${capsule_cmd[@]}" check --bless --manifest-path "$project" --target-dir "$target")
echo "cold check --bless (sandboxed build and scan): ${cold}s"

warm=()
for _ in $(seq "$runs"); do
    warm+=("$(timed warm "${capsule_cmd[@]}" check --manifest-path "$project" --target-dir "$target")")
done
grep -q "from the cache" "$bench_dir/warm.log" || die "warm check did not use the manifest cache (see $bench_dir/warm.log)"

cp "$bench_dir/project/capsule.lock" "$bench_dir/checkout/capsule.lock"
shared=()
for i in $(seq "$runs"); do
    shared+=("$(timed checkout "${capsule_cmd[@]}" check --manifest-path "$checkout" \
        --target-dir "$bench_dir/checkout-target-$i" --cache-dir "$target/capsule/cache")")
done
grep -q "from the cache" "$bench_dir/checkout.log" || die "the second checkout did not use the shared cache (see $bench_dir/checkout.log)"

nocache=()
for _ in $(seq "$runs"); do
    rm -rf -- "$target/capsule/cache/runs"
    nocache+=("$(timed nocache "${capsule_cmd[@]}" check --manifest-path "$project" --target-dir "$target")")
done

p=$(median "${plain[@]}")
w=$(median "${warm[@]}")
s=$(median "${shared[@]}")
n=$(median "${nocache[@]}")
echo "runs: $runs (medians, wall clock)"
echo "plain no-op cargo build: ${p}s  (runs: ${plain[*]})"
echo "warm check:              ${w}s  (runs: ${warm[*]})  ratio to plain $(awk -v a="$w" -v b="$p" 'BEGIN { printf "%.2f", a / b }')  target <= 1 s: $(awk -v a="$w" 'BEGIN { print (a <= 1 ? "met" : "NOT met") }')"
echo "new checkout, shared cache: ${s}s  (runs: ${shared[*]})"
echo "warm check, no manifest cache: ${n}s  (runs: ${nocache[*]})  ratio to plain $(awk -v a="$n" -v b="$p" 'BEGIN { printf "%.2f", a / b }')"
