#!/usr/bin/env bash
# Builds the browser app (the `roundtable-client` crate) into client/dist/,
# which the server serves as it is:
#
#   client/dist/index.html, style.css, loader.js, favicon.svg
#   client/dist/pkg/roundtable_client.js       wasm-bindgen's JS glue
#   client/dist/pkg/roundtable_client_bg.wasm  the app, size-optimised
#
# Every file also gets a gzip -9 twin (`*.gz`) for servers that serve
# precompressed files.
#
# It installs what is missing, and does nothing slow when it is all there:
#   - the wasm32-unknown-unknown target (rustup);
#   - the wasm-bindgen CLI at exactly the version of the wasm-bindgen crate in
#     Cargo.lock (the two must match; cargo install, built from crates.io);
#   - wasm-opt, from Debian's `binaryen` package.
#
# Runs from any directory. Uses the workspace's target/ unless CARGO_TARGET_DIR
# (or a cargo config) says otherwise.
set -euo pipefail

started=$SECONDS
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# Where cargo puts its output: target/ at the workspace root, unless
# CARGO_TARGET_DIR or a cargo config says otherwise. cargo metadata knows.
target_dir="$(cargo metadata --format-version 1 --no-deps |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
if [[ -z "$target_dir" ]]; then
    echo "build-client.sh: could not find cargo's target directory" >&2
    exit 1
fi
crate_file=roundtable_client
wasm_target=wasm32-unknown-unknown
profile=wasm-release
dist="$root/client/dist"
static_files=(index.html style.css loader.js favicon.svg)

# cargo install puts binaries here; make sure we find them on a fresh shell.
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

say() { printf '==> %s\n' "$*" >&2; }

# Runs a command as root: directly if we are root, else through sudo.
as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        say "need root to run: $*"
        return 1
    fi
}

ensure_wasm_target() {
    if ! command -v rustup >/dev/null; then
        # A toolchain without rustup must already have the target; the build
        # below says so clearly if it does not.
        return
    fi
    if ! rustup target list --installed | grep -qx "$wasm_target"; then
        say "adding the $wasm_target target"
        rustup target add "$wasm_target"
    fi
}

ensure_wasm_opt() {
    if command -v wasm-opt >/dev/null; then
        return
    fi
    say "installing wasm-opt (Debian package binaryen)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q binaryen
}

# The wasm-bindgen crate version the build used, from Cargo.lock.
locked_wasm_bindgen_version() {
    awk '
        $0 == "name = \"wasm-bindgen\"" { found = 1; next }
        found && /^version = / { gsub(/version = |"/, ""); print; exit }
    ' Cargo.lock
}

ensure_wasm_bindgen_cli() {
    local wanted installed
    wanted="$(locked_wasm_bindgen_version)"
    if [[ -z "$wanted" ]]; then
        say "could not find the wasm-bindgen crate in Cargo.lock"
        exit 1
    fi
    installed="$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)"
    if [[ "$installed" != "$wanted" ]]; then
        say "installing wasm-bindgen-cli $wanted (found: ${installed:-none})"
        # Deliberately without --locked: with it, the install fails to build
        # on current toolchains.
        cargo install wasm-bindgen-cli --version "$wanted"
    fi
}

ensure_wasm_target
ensure_wasm_opt

say "compiling roundtable-client for $wasm_target (profile $profile)"
cargo build -p roundtable-client --target "$wasm_target" --profile "$profile"
wasm="$target_dir/$wasm_target/$profile/$crate_file.wasm"

# Read the version after the build, which may have updated Cargo.lock.
ensure_wasm_bindgen_cli

# Assemble in a fresh directory, then swap it in, so a server reading
# client/dist never sees a half-written app.
stage="$root/client/dist.new"
rm -rf "$stage"
mkdir -p "$stage/pkg"

say "optimising the wasm for size"
# wasm-opt runs on cargo's output, before wasm-bindgen. Debian's binaryen is
# v108: it needs the features rustc emits turned on by name, and it writes a
# wrong table index for wasm-bindgen's exported externref table (the page then
# fails with "WebAssembly.Table.set(): Argument 1 is invalid for table"). Before
# wasm-bindgen the module has only its function table, so nothing can go wrong.
optimised="$stage/optimised/$crate_file.wasm"
mkdir -p "$(dirname "$optimised")"
wasm-opt -Oz \
    --enable-bulk-memory \
    --enable-reference-types \
    --enable-nontrapping-float-to-int \
    --enable-sign-ext \
    --enable-mutable-globals \
    --enable-multivalue \
    -o "$optimised" "$wasm"

say "generating JS bindings"
wasm-bindgen --target web --no-typescript --out-dir "$stage/pkg" "$optimised"
rm -r "$(dirname "$optimised")"

for file in "${static_files[@]}"; do
    cp "$root/client/$file" "$stage/$file"
done

find "$stage" -type f ! -name '*.gz' -exec gzip -9 -n -k -f {} \;

rm -rf "$dist"
mv "$stage" "$dist"

gzip_size() { gzip -9 -n -c "$1" | wc -c; }
report() {
    printf '  %-36s %9d bytes raw %9d bytes gzip -9\n' "${1#"$dist"/}" "$(stat -c %s "$1")" "$(gzip_size "$1")"
}
say "built client/dist in $((SECONDS - started)) s"
report "$dist/pkg/${crate_file}_bg.wasm"
report "$dist/pkg/$crate_file.js"
report "$dist/loader.js"
report "$dist/index.html"
report "$dist/style.css"
total_gzip=0
for file in "$dist/pkg/${crate_file}_bg.wasm" "$dist/pkg/$crate_file.js" "$dist/loader.js" "$dist/index.html" "$dist/style.css"; do
    total_gzip=$((total_gzip + $(gzip_size "$file")))
done
printf '  %-36s %9s           %9d bytes gzip -9\n' "page total" "" "$total_gzip"
