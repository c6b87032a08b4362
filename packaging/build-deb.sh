#!/usr/bin/env bash
# Builds the Debian package (target/debian/meshlens_<version>_<arch>.deb) with cargo-deb,
# from [package.metadata.deb] in Cargo.toml: the release binary with the GUI, the menu entry,
# AppStream metainfo, icons, README and licence. Lists the package's contents at the end.
#   packaging/build-deb.sh            # needs cargo-deb: cargo install cargo-deb
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo-deb >/dev/null || {
    echo "cargo-deb is missing: cargo install cargo-deb" >&2
    exit 1
}
desktop-file-validate packaging/io.github.meshlens.meshlens.desktop
appstreamcli validate --no-net packaging/io.github.meshlens.meshlens.metainfo.xml
cargo deb --strip "$@"
deb=$(ls -t target/debian/meshlens_*.deb | head -1)
dpkg-deb -c "$deb"
echo "built $deb"
