#!/usr/bin/env bash
# Runs the unit tests of the patched yrs in vendor/yrs (see vendor/yrs/FORK.md), which
# cargo cannot run in place: vendor/yrs is a patch of the workspace, not a member.
#
#   bash scripts/test-vendored-yrs.sh [TEST_FILTER]
#
# The crate is copied outside the workspace and tested there as published, less its
# benchmarks (criterion is a large build and no test uses it). Two changes are made to
# the copy only: yrs 0.28.1's own tests use the unstable `std::assert_matches`, so the
# copy takes the same macro from its `assert_matches2` dev-dependency; and the tests that
# read data files the published crate does not ship are skipped.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}/vendored-yrs"
work="$(mktemp -d "${TMPDIR:-/tmp}/vendored-yrs.XXXXXX")"
trap 'rm -rf "$work"' EXIT

cp -r "$root/vendor/yrs/src" "$root/vendor/yrs/Cargo.toml" "$work/"
cd "$work"
sed -i 's/use std::assert_matches;/use assert_matches2::assert_matches;/' src/update.rs
python3 - <<'EOF'
import re
s = open("Cargo.toml").read()
s = re.sub(r"\[\[bench\]\]\n(?:[^\[\n].*\n|\n)*", "", s)
s = re.sub(r"\[dev-dependencies\.criterion\]\n(?:[^\[\n].*\n|\n)*", "", s)
s = s.replace("bench = true", "bench = false")
open("Cargo.toml", "w").write(s)
EOF
CARGO_TARGET_DIR="$target" cargo test --lib -- "$@" \
    --skip tests::compatibility_tests::test_small_data_set \
    --skip tests::compatibility_tests::test_medium_data_set \
    --skip tests::edit_traces_tests::edit_trace_
