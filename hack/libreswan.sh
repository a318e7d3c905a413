#!/usr/bin/env bash
# Unpacks Debian's libreswan (pluto, whack, addconn) and the NSS tools
# (certutil, pk12util) into a cache directory for the interop tests. They
# are never installed: libreswan Conflicts with charon, so installing it
# would remove the strongSwan the gateway runs. The tests run pluto from
# this directory with LD_LIBRARY_PATH pointing into it (test/integration,
# libreswan_test.go). Prints the directory; a fast no-op when it is there.
#
#   LIBRESWAN_DIR  where to unpack (default: ${XDG_CACHE_HOME:-$HOME/.cache}/ikegate/libreswan-4.10)
set -euo pipefail

VERSION=4.10
DIR="${LIBRESWAN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ikegate/libreswan-$VERSION}"
PLUTO="$DIR/usr/libexec/ipsec/pluto"

if [[ -x "$PLUTO" && -x "$DIR/usr/bin/certutil" && -f "$DIR/.complete" ]]; then
  echo "$DIR"
  exit 0
fi

# libreswan itself, the NSS tools it Depends on (not installed with
# strongSwan) and the libraries pluto links that the strongSwan machine
# lacks; the other Depends (libnss3, libunbound8, libevent-core, ...) are
# already there, and the ldd check below says if that ever changes.
PKGS=(libreswan libnss3-tools libldns3 libevent-pthreads-2.1-7)

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# apt-get download runs as the _apt user where it can; let it write here.
chmod 0777 "$work"
cd "$work"
if ! apt-get -q download "${PKGS[@]}" >apt.log 2>&1; then
  # Stale package lists on a fresh machine name versions the mirror dropped.
  if [[ "$(id -u)" == 0 ]]; then
    apt-get -q -o DPkg::Lock::Timeout=600 update >/dev/null 2>&1 || true
  fi
  if ! apt-get -q download "${PKGS[@]}" >apt.log 2>&1; then
    cat apt.log >&2
    echo "libreswan: apt-get download ${PKGS[*]} failed" >&2
    exit 1
  fi
fi

tmp="$DIR.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
for deb in ./*.deb; do
  dpkg-deb -x "$deb" "$tmp"
done
ver="$(LD_LIBRARY_PATH="$tmp/usr/lib/x86_64-linux-gnu" "$tmp/usr/libexec/ipsec/pluto" --version 2>&1 || true)"
if [[ "$ver" != *"Libreswan $VERSION"* ]]; then
  echo "libreswan: unpacked pluto does not run or is not $VERSION: $ver" >&2
  LD_LIBRARY_PATH="$tmp/usr/lib/x86_64-linux-gnu" ldd "$tmp/usr/libexec/ipsec/pluto" >&2 || true
  rm -rf "$tmp"
  exit 1
fi
touch "$tmp/.complete"
rm -rf "$DIR"
mkdir -p "$(dirname "$DIR")"
mv "$tmp" "$DIR"
echo "libreswan: unpacked $ver into $DIR" >&2
echo "$DIR"
