#!/usr/bin/env bash
# Builds the release tarball dist/meshlens-<version>-<target>.tar.gz: the binary, the
# assets it ships with (schemas, demo sandboxes, icons), the menu entry and metainfo, the
# licence and the README.
#   packaging/release-tarball.sh                          # the desktop app (GUI)
#   packaging/release-tarball.sh --no-default-features    # headless: CLI and proxy only
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(cargo metadata --no-deps --format-version 1 |
    python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"]=="meshlens"))')
target=$(rustc -vV | sed -n 's/^host: //p')
flavour=""
for arg in "$@"; do
    [ "$arg" = "--no-default-features" ] && flavour="-headless"
done
name="meshlens-${version}-${target}${flavour}"

cargo build --release --locked "$@"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root="$stage/$name"
mkdir -p "$root/share/applications" "$root/share/metainfo"
install -m 755 -s target/release/meshlens "$root/meshlens"
install -m 644 LICENSE README.md "$root/"
cp -r assets/schemas assets/sandboxes assets/icons "$root/"
install -m 644 packaging/io.github.meshlens.meshlens.desktop "$root/share/applications/"
install -m 644 packaging/io.github.meshlens.meshlens.metainfo.xml "$root/share/metainfo/"

mkdir -p dist
tar -C "$stage" -czf "dist/$name.tar.gz" "$name"
tar -tzf "dist/$name.tar.gz" | head -20
echo "built dist/$name.tar.gz"
