#!/usr/bin/env bash
# Builds the browser apps into client/dist/, which the server serves as it is:
#
#   client/dist/index.html, style.css, loader.js, favicon.svg
#   client/dist/pkg/roundtable_client.js       the full app (`roundtable-client`):
#   client/dist/pkg/roundtable_client_bg.wasm    board, chair, room view
#   client/dist/pkg/roundtable_phone.js        the phone's pages (`roundtable-phone`):
#   client/dist/pkg/roundtable_phone_bg.wasm     joining, lobby, safety scale
#
# loader.js starts one of the two, chosen by the page's path.
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
# crate, its library file name, and the features its browser module needs.
apps=(
    "roundtable-client roundtable_client"
    "roundtable-phone roundtable_phone entry"
)
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

for app in "${apps[@]}"; do
    read -r package _ features <<<"$app"
    say "compiling $package for $wasm_target (profile $profile)"
    # One build per app: the full app links roundtable-phone without its start
    # function, the phone's own module with it.
    cargo build -p "$package" ${features:+--features "$features"} --target "$wasm_target" --profile "$profile"
done

# Read the version after the build, which may have updated Cargo.lock.
ensure_wasm_bindgen_cli

# Assemble in a fresh directory, then swap it in, so a server reading
# client/dist never sees a half-written app.
stage="$root/client/dist.new"
rm -rf "$stage"
mkdir -p "$stage/pkg"

for app in "${apps[@]}"; do
    read -r _ crate_file _ <<<"$app"
    wasm="$target_dir/$wasm_target/$profile/$crate_file.wasm"
    say "optimising $crate_file.wasm for size"
    # wasm-opt runs on cargo's output, before wasm-bindgen. Debian's binaryen is
    # v108: it needs the features rustc emits turned on by name, and it writes a
    # wrong table index for wasm-bindgen's exported externref table (the page then
    # fails with "WebAssembly.Table.set(): Argument 1 is invalid for table"). Before
    # wasm-bindgen the module has only its function table, so nothing can go wrong.
    # -Os rather than -Oz: -Oz leaves wasm-bindgen unable to find a closure in the
    # function table of the phone's module ("failed to find `0` in function
    # table"), and its output compresses no smaller anyway.
    optimised="$stage/optimised/$crate_file.wasm"
    mkdir -p "$(dirname "$optimised")"
    wasm-opt -Os \
        --enable-bulk-memory \
        --enable-reference-types \
        --enable-nontrapping-float-to-int \
        --enable-sign-ext \
        --enable-mutable-globals \
        --enable-multivalue \
        -o "$optimised" "$wasm"
    say "generating JS bindings for $crate_file"
    wasm-bindgen --target web --no-typescript --out-dir "$stage/pkg" "$optimised"
    rm -r "$(dirname "$optimised")"
done

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
# What a browser downloads for each app's pages: its module, the loader, the page
# and the styles.
for app in "${apps[@]}"; do
    read -r package crate_file _ <<<"$app"
    say "$package"
    total_gzip=0
    for file in "$dist/pkg/${crate_file}_bg.wasm" "$dist/pkg/$crate_file.js" "$dist/loader.js" "$dist/index.html" "$dist/style.css" "$dist/favicon.svg"; do
        report "$file"
        total_gzip=$((total_gzip + $(gzip_size "$file")))
    done
    printf '  %-36s %9s           %9d bytes gzip -9\n' "page total" "" "$total_gzip"
done
