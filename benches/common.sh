# shellcheck shell=bash disable=SC2034,SC2154
# Shared by the benchmark scripts, which source it after setting
# `bench_name` (for messages) and `runs` (the default run count). Not run
# on its own.
#
# Provides: die, usage (the calling script's header comment), runs_option
# (--runs N, --runs=N, -h/--help), check_runs, median, remove_dir,
# setup_bench_dir PREFIX (BENCH_DIR or a new temporary directory with a
# fake home, removed on exit unless BENCH_KEEP=1; keeps RUSTUP_HOME and
# CARGO_HOME on the real homes) and capsule_command [always] (the CAPSULE
# command as the array capsule_cmd, building target/release/cargo-capsule
# when it is missing, or always with `always`).

die() {
    echo "$bench_name: $*" >&2
    exit 2
}

# The calling script's header comment, from line 2 to `set -euo`.
usage() {
    sed -n 's/^# \{0,1\}//; 2,/^set -euo/p' "$0" | sed '$d'
}

# runs_option ARGS...: when the first argument is --runs N, --runs=N or
# -h/--help, handles it and sets $consumed to the number of arguments used;
# else sets $consumed to 0.
consumed=0
runs_option() {
    consumed=0
    case "$1" in
        --runs)
            [[ $# -ge 2 ]] || die "--runs needs a value"
            runs=$2
            consumed=2
            ;;
        --runs=*)
            runs=${1#--runs=}
            consumed=1
            ;;
        -h | --help)
            usage
            exit 0
            ;;
    esac
}

check_runs() {
    [[ $runs =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer, not '$runs'"
}

# median of the numbers given as arguments, 3 decimals
median() {
    printf '%s\n' "$@" | sort -g | awk '
        { v[NR] = $1 }
        END {
            if (NR % 2) m = v[(NR + 1) / 2]
            else m = (v[NR / 2] + v[NR / 2 + 1]) / 2
            printf "%.3f", m
        }'
}

# rm -rf, retried: the demo's daemon fixture may still write into its OUT_DIR
# for a few seconds after its build finished.
remove_dir() {
    local tries
    for tries in 1 2 3 4 5; do
        rm -rf -- "$1" 2>/dev/null && return 0
        sleep "$tries"
    done
    rm -rf -- "$1"
}

# setup_bench_dir PREFIX: sets $bench_dir (BENCH_DIR, or a new
# ${TMPDIR:-/tmp}/PREFIX.XXXXXX) and creates $bench_dir/home; removes it on
# exit unless BENCH_KEEP=1. cargo and rustup keep their real homes, so the
# toolchain and the fetched sources are still found under a fake HOME.
setup_bench_dir() {
    export RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}"
    export CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"
    if [[ -n ${BENCH_DIR:-} ]]; then
        mkdir -p -- "$BENCH_DIR"
        bench_dir=$(cd -- "$BENCH_DIR" && pwd)
    else
        bench_dir=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    fi
    mkdir -p -- "$bench_dir/home"
    trap bench_cleanup EXIT
}

bench_cleanup() {
    if [[ ${BENCH_KEEP:-0} != 1 ]]; then
        remove_dir "$bench_dir"
    else
        echo "$bench_name: kept $bench_dir" >&2
    fi
}

# capsule_command [always]: sets the array capsule_cmd from CAPSULE (split
# on spaces; default target/release/cargo-capsule capsule). With the
# default, builds the release binary when it is missing, or with `always`
# brings it up to date.
capsule_command() {
    read -r -a capsule_cmd <<<"${CAPSULE:-target/release/cargo-capsule capsule}"
    if [[ -z ${CAPSULE:-} ]]; then
        if [[ ${1:-} == always ]]; then
            cargo build --release --quiet
        elif [[ ! -x target/release/cargo-capsule ]]; then
            echo "$bench_name: building target/release/cargo-capsule" >&2
            cargo build --release
        fi
    fi
}
