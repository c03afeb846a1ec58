#!/usr/bin/env bash
# Static-scan benchmark on benches/real-project: the plain `cargo build` time
# (clean target dir) as the baseline, then on a target dir built once by
# `cargo capsule build --no-scan`, the cold scan (scan cache removed) and the
# warm scan (cache kept), each run N times. Scan time and peak memory come
# from the line `cargo capsule scan` prints on stderr ("scanned N crates
# (J jobs, C from cache) in S s, peak memory M MiB"); they cover the scan
# itself, not cargo's no-op build check before it. See benches/README.md.
#
# Usage: benches/scan-bench.sh [--runs N]
#
# Environment:
#   CAPSULE    command, split on spaces (default: "target/release/cargo-capsule
#              capsule", built with `cargo build --release` if missing)
#   BENCH_DIR  where target dirs, logs and the fake HOME go (default: a new
#              directory under ${TMPDIR:-/tmp}); BENCH_KEEP=1 keeps it
set -euo pipefail

bench_name=scan-bench
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
capsule_command
setup_bench_dir capsule-scan-bench
manifest=benches/real-project/Cargo.toml

# Plain build, the baseline.
plain_target="$bench_dir/plain"
start=$(date +%s.%N)
HOME="$bench_dir/home" cargo build --manifest-path "$manifest" --target-dir "$plain_target" \
    >"$bench_dir/plain.log" 2>&1 || die "plain build failed, see $bench_dir/plain.log"
plain=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.3f", e - s }')
rm -rf -- "$plain_target"
echo "plain cargo build: ${plain}s"

target="$bench_dir/capsule"
HOME="$bench_dir/home" "${capsule_cmd[@]}" build --no-scan --manifest-path "$manifest" \
    --target-dir "$target" --format json >/dev/null 2>"$bench_dir/build.log" ||
    die "cargo capsule build failed, see $bench_dir/build.log"

# scan_once: runs the scan, sets $seconds, $rss (MiB), $jobs, $cached.
scan_once() {
    HOME="$bench_dir/home" "${capsule_cmd[@]}" scan --manifest-path "$manifest" \
        --target-dir "$target" --format json >"$bench_dir/scan.json" 2>"$bench_dir/scan.log" ||
        die "cargo capsule scan failed, see $bench_dir/scan.log"
    local line
    line=$(grep '^cargo-capsule: scanned ' "$bench_dir/scan.log" | tail -1)
    [[ -n $line ]] || die "no scan summary line in $bench_dir/scan.log"
    read -r crates jobs cached seconds rss < <(echo "$line" |
        sed -E 's/.*scanned ([0-9]+) crates \(([0-9]+) jobs, ([0-9]+) from cache\) in ([0-9.]+) s, peak memory ([0-9]+) MiB.*/\1 \2 \3 \4 \5/')
}

cold=() cold_rss=() warm=() warm_rss=()
for run in $(seq 1 "$runs"); do
    rm -rf -- "$target/capsule/scan"
    scan_once
    cold+=("$seconds") cold_rss+=("$rss")
    echo "run $run: cold ${seconds}s (${jobs} jobs, ${cached} cached, ${crates} crates, peak ${rss} MiB)"
    scan_once
    warm+=("$seconds") warm_rss+=("$rss")
    echo "run $run: warm ${seconds}s (${jobs} jobs, ${cached} cached, peak ${rss} MiB)"
done
cold_median=$(median "${cold[@]}")
warm_median=$(median "${warm[@]}")
ratio=$(awk -v c="$cold_median" -v p="$plain" 'BEGIN { printf "%.3f", c / p }')
max_rss=$(printf '%s\n' "${cold_rss[@]}" "${warm_rss[@]}" | sort -n | tail -1)
echo "RESULT plain_build=${plain}s cold_scan_median=${cold_median}s cold/plain=${ratio} (target <= 0.10) warm_scan_median=${warm_median}s (target <= 0.5) peak_rss_max=${max_rss}MiB (target <= 150)"
