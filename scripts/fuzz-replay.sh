#!/usr/bin/env bash
# Replays a sequence of inputs a fuzz target wrote when it failed (fuzz/src/history.rs)
# in one process, as the target ran them, and says whether it fails again.
#
#   bash scripts/fuzz-replay.sh TARGET DIR            replay
#   bash scripts/fuzz-replay.sh TARGET DIR --shrink   then find a shorter sequence that
#                                                     still fails (written to DIR-shrunk)
#
# Shrinking leaves out ever smaller runs of inputs and keeps each cut after which the
# sequence still fails (delta debugging); it stops after FUZZ_SHRINK_RUNS replays
# (default 300). A replay may not fail where the run did: ids and tokens are random,
# and a fault may depend on timing. Uses the binary scripts/fuzz.sh built
# (FUZZ_SANITIZER as there; built here if missing), or FUZZ_BINARY if set.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
say() { printf '==> %s\n' "$*" >&2; }

if (($# < 2)) || { (($# == 3)) && [[ $3 != --shrink ]]; } || (($# > 3)); then
    echo "usage: $0 TARGET DIR [--shrink]" >&2
    exit 2
fi
target="$1"
dir="$(cd "$2" && pwd)"
shrink="${3:-}"
sanitizer="${FUZZ_SANITIZER:-none}"
most_runs="${FUZZ_SHRINK_RUNS:-300}"
cd "$root"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

if [[ -n ${FUZZ_BINARY:-} ]]; then
    bin="$FUZZ_BINARY"
else
    host="$(rustc +nightly -vV | sed -n 's/^host: //p')"
    bin="$root/fuzz/target/$sanitizer/$host/release/$target"
fi
if [[ ! -x $bin ]]; then
    say "building $target (sanitizer: $sanitizer)"
    cargo +nightly fuzz build --sanitizer "$sanitizer" --target-dir "fuzz/target/$sanitizer" "$target"
fi

shopt -s nullglob
inputs=("$dir"/[0-9]*)
if ((${#inputs[@]} == 0)); then
    echo "$dir holds no inputs" >&2
    exit 2
fi
[[ -e $dir/INCOMPLETE ]] && say "the sequence is incomplete: it may not fail again"

scratch="$(mktemp -d "$( [[ -d /dev/shm ]] && echo /dev/shm || echo "${TMPDIR:-/tmp}")/roundtable-replay.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
export ROUNDTABLE_FUZZ_DIR="$scratch"
export ASAN_OPTIONS="detect_odr_violation=0:allocator_may_return_null=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
unset ROUNDTABLE_FUZZ_HISTORY

runs=0
# Whether the inputs given, run in that order in one process, fail.
fails() {
    runs=$((runs + 1))
    ! timeout --kill-after=10 600 "$bin" -detect_leaks=0 -rss_limit_mb=2048 \
        -malloc_limit_mb=1048576 "$@" >"$scratch/log" 2>&1
}

say "replaying ${#inputs[@]} inputs"
if ! fails "${inputs[@]}"; then
    say "the sequence did not fail again"
    exit 1
fi
grep -E "fuzz target failed|panicked at|ERROR" "$scratch/log" | head -n 5 >&2 || true
[[ $shrink == --shrink ]] || exit 0

# Delta debugging: cut the sequence into n parts and try it without each; keep a cut
# that still fails, else cut finer.
n=2
while ((${#inputs[@]} >= 2 && runs < most_runs)); do
    size=${#inputs[@]}
    chunk=$(((size + n - 1) / n))
    cut=0
    for ((start = 0; start < size && runs < most_runs; start += chunk)); do
        candidate=("${inputs[@]:0:start}" "${inputs[@]:start+chunk}")
        if ((${#candidate[@]} > 0)) && fails "${candidate[@]}"; then
            inputs=("${candidate[@]}")
            n=$((n > 2 ? n - 1 : 2))
            cut=1
            break
        fi
    done
    if ((!cut)); then
        ((n >= size)) && break
        n=$((2 * n > size ? size : 2 * n))
    fi
    say "${#inputs[@]} inputs still fail (replay $runs)"
done

out="$dir-shrunk"
rm -rf "$out"
mkdir -p "$out"
i=0
for input in "${inputs[@]}"; do
    cp "$input" "$out/$(printf '%06d' "$i")"
    i=$((i + 1))
done
fails "$out"/[0-9]* || say "the shrunk sequence no longer fails on its own (the fault is not repeatable)"
grep -E "fuzz target failed|panicked at" "$scratch/log" | head -n 5 >&2 || true
say "${#inputs[@]} inputs in $out ($runs replays); replay with: bash scripts/fuzz-replay.sh $target $out"
