#!/usr/bin/env bash
# Builds the headless binary (CLI and sidecar proxy, `--no-default-features`) with
# profile-guided optimization: an instrumented build plays the bundled demo sandbox (real
# proxies: mTLS, HTTP/2 between them, policy per request, Avro inspection), and the release
# build is then laid out by that profile. The proxy's hot path is spread over hyper, h2,
# rustls and tokio and runs on cold caches at moderate rates; with the profile it used
# 11-19 % less CPU per request (BENCHMARKS.md, "Sidecar proxy pair").
#
#   packaging/pgo-build.sh            # -> target/pgo/use/release/meshlens
#
# Needs llvm-profdata for rustc's LLVM: `rustup component add llvm-tools`. Takes about twice
# a release build. Everything is under target/pgo; RUSTFLAGS from the caller is replaced.
set -euo pipefail
cd "$(dirname "$0")/.."

host=$(rustc -vV | sed -n 's/^host: //p')
profdata="$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata"
if [ ! -x "$profdata" ]; then
    echo "pgo-build: no llvm-profdata for this toolchain; run: rustup component add llvm-tools" >&2
    exit 1
fi

work="$PWD/target/pgo"
# Every crate is rebuilt from the new profile, never mixed with crates from an old one.
rm -rf "$work/meshlens.profdata" "$work/use"
RUSTFLAGS="-Cprofile-generate=$work/profiles" \
    cargo build --release --locked --no-default-features --target-dir "$work/gen"
# Build scripts and macros ran instrumented during the build; only the demo's run counts.
rm -rf "$work/profiles"
# 45 s of the demo sandbox, its scenario played four times as fast as in the app.
"$work/gen/release/meshlens" sandbox up --duration 45s --time-scale 4 >"$work/train.log"
"$profdata" merge -o "$work/meshlens.profdata" "$work/profiles"
RUSTFLAGS="-Cprofile-use=$work/meshlens.profdata" \
    cargo build --release --locked --no-default-features --target-dir "$work/use"
echo "$work/use/release/meshlens"
