#!/usr/bin/env bash
# Build-time benchmark: a plain `cargo build` against `cargo capsule build
# --no-scan` (the sandbox's cost; benches/scan-bench.sh measures the scan),
# each from a clean target directory, on the demo fixture workspace and on
# benches/real-project (about twenty popular crates with build scripts and
# proc macros). See benches/README.md.
#
# Usage: benches/build-bench.sh [--runs N] [--project demo|real|all]
#
# Environment:
#   CAPSULE            command for the sandboxed build, split on spaces
#                      (default: "target/release/cargo-capsule capsule",
#                      built with `cargo build --release` if missing)
#   CAPSULE_BENCH_DRY  1: time the plain builds only (no capsule runs)
#   BENCH_DIR          where target dirs, logs and the fake HOME go
#                      (default: a new directory under ${TMPDIR:-/tmp})
#   BENCH_KEEP         1: keep BENCH_DIR afterwards
#   CARGO_BUILD_JOBS   inherited by both kinds of build alike
set -euo pipefail

bench_name=build-bench
runs=3
project=all
# shellcheck source=benches/common.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/common.sh"

while [[ $# -gt 0 ]]; do
    runs_option "$@"
    if [[ $consumed -gt 0 ]]; then
        shift "$consumed"
        continue
    fi
    case "$1" in
        --project)
            [[ $# -ge 2 ]] || die "--project needs a value"
            project=$2
            shift 2
            ;;
        --project=*)
            project=${1#--project=}
            shift
            ;;
        *)
            die "unknown argument: $1 (see --help)"
            ;;
    esac
done
check_runs
case "$project" in
    demo) projects=(demo) ;;
    real) projects=(real) ;;
    all) projects=(demo real) ;;
    *) die "--project must be demo, real or all, not '$project'" ;;
esac

script_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd -- "$script_dir/.." && pwd)
cd -- "$repo_root"

dry=${CAPSULE_BENCH_DRY:-0}
if [[ $dry == 1 ]]; then
    read -r -a capsule_cmd <<<"${CAPSULE:-target/release/cargo-capsule capsule}"
else
    capsule_command
fi

# The fixtures read "secrets" under $HOME and write into it: give every build,
# plain or sandboxed, the same throwaway HOME.
setup_bench_dir capsule-bench
fake_home="$bench_dir/home"

now() {
    date +%s.%N
}

manifest_of() {
    case "$1" in
        demo) echo "fixtures/demo/Cargo.toml" ;;
        real) echo "benches/real-project/Cargo.toml" ;;
    esac
}

# time_build NAME KIND RUN TARGET_DIR CMD...: clean TARGET_DIR, run CMD with
# the fake HOME, log to BENCH_DIR, set $elapsed (wall seconds, 3 decimals)
# and $cpu (user + system seconds of CMD and everything it waited for: less
# sensitive than wall time to a noisy machine).
elapsed=
cpu=
time_build() {
    local name=$1 kind=$2 run=$3 target=$4
    shift 4
    local log="$bench_dir/$name-$kind-$run.log" start end status=0
    local cpu_file="$bench_dir/cpu"
    remove_dir "$target"
    start=$(now)
    HOME="$fake_home" python3 -c '
import resource, subprocess, sys
status = subprocess.call(sys.argv[2:])
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1], "w").write("%.3f" % (usage.ru_utime + usage.ru_stime))
sys.exit(status)
' "$cpu_file" "$@" >"$log" 2>&1 || status=$?
    end=$(now)
    cpu=$(cat -- "$cpu_file" 2>/dev/null || echo 0)
    if [[ $status -ne 0 ]]; then
        echo "build-bench: $kind build of $name failed (exit $status): $*" >&2
        tail -n 40 -- "$log" >&2
        BENCH_KEEP=1
        exit 1
    fi
    elapsed=$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f", e - s }')
    # The write-outside fixture leaves a file in its source directory.
    rm -f -- "$repo_root/fixtures/demo/write-outside/capsule-was-here.txt"
    printf '%-5s run %d/%d  %-7s %8.3fs  cpu %8.3fs\n' "$name" "$run" "$runs" "$kind" "$elapsed" "$cpu"
}

# What the sandboxed build covered, from its report: build scripts run and
# proc macros expanded in the sandbox (a benchmark that sandboxed nothing
# would prove nothing).
sandboxed_work() {
    python3 - "$1" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
crates = report["crates"]
scripts = [c for c in crates if c.get("build_script", {}).get("status") == "ran"]
macros = sorted(c["name"] for c in crates if c.get("proc_macro", {}).get("status") == "ran")
print(f"        sandboxed: {len(scripts)} build scripts ran, {len(macros)} proc macros expanded ({', '.join(macros)})")
PY
}

echo "build-bench: runs=$runs projects=${projects[*]} jobs=${CARGO_BUILD_JOBS:-default}" \
    "capsule=$(if [[ $dry == 1 ]]; then echo '(dry: skipped)'; else echo "${capsule_cmd[*]}"; fi)"
echo "build-bench: work dir $bench_dir"

results=()
for name in "${projects[@]}"; do
    manifest=$(manifest_of "$name")
    plain_target="$bench_dir/$name/plain-target"
    capsule_target="$bench_dir/$name/capsule-target"
    # Downloads are not part of what is measured.
    cargo fetch --quiet --manifest-path "$manifest"
    plain_times=()
    capsule_times=()
    plain_cpu=()
    capsule_cpu=()
    for ((run = 1; run <= runs; run++)); do
        # Alternate which goes first, so that neither always gets the
        # warmer caches.
        order=(plain capsule)
        if ((run % 2 == 0)); then
            order=(capsule plain)
        fi
        for kind in "${order[@]}"; do
            if [[ $kind == plain ]]; then
                time_build "$name" plain "$run" "$plain_target" \
                    cargo build --manifest-path "$manifest" --target-dir "$plain_target"
                plain_times+=("$elapsed")
                plain_cpu+=("$cpu")
            elif [[ $dry != 1 ]]; then
                time_build "$name" capsule "$run" "$capsule_target" \
                    "${capsule_cmd[@]}" build --no-scan --manifest-path "$manifest" \
                    --target-dir "$capsule_target"
                capsule_times+=("$elapsed")
                capsule_cpu+=("$cpu")
                sandboxed_work "$capsule_target/capsule/build-report.json"
            fi
        done
    done
    remove_dir "$plain_target"
    remove_dir "$capsule_target"

    plain_median=$(median "${plain_times[@]}")
    if [[ ${#capsule_times[@]} -gt 0 ]]; then
        capsule_median=$(median "${capsule_times[@]}")
        ratio=$(awk -v c="$capsule_median" -v p="$plain_median" 'BEGIN { printf "%.3f", c / p }')
        # On a noisy machine the two medians can come from different moments;
        # the median of each run's own capsule/plain ratio (the two builds of
        # a run are back to back) is the steadier figure.
        run_ratios=()
        for ((i = 0; i < ${#capsule_times[@]}; i++)); do
            run_ratios+=("$(awk -v c="${capsule_times[i]}" -v p="${plain_times[i]}" 'BEGIN { printf "%.4f", c / p }')")
        done
        paired=$(median "${run_ratios[@]}")
        cpu_ratio=$(awk -v c="$(median "${capsule_cpu[@]}")" -v p="$(median "${plain_cpu[@]}")" 'BEGIN { printf "%.3f", c / p }')
        capsule_field="${capsule_median}s"
    else
        capsule_field=skipped
        ratio=skipped
        paired=skipped
        cpu_ratio=skipped
    fi
    echo "$name: plain median ${plain_median}s, capsule median $capsule_field, ratio capsule/plain $ratio, median of per-run ratios $paired, cpu ratio $cpu_ratio"
    results+=("RESULT project=$name plain_median=${plain_median}s capsule_median=$capsule_field ratio=$ratio paired_ratio=$paired cpu_ratio=$cpu_ratio")
done

printf '%s\n' "${results[@]}"
