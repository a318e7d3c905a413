#!/usr/bin/env bash
# Puts promtool (from Debian's prometheus package) into bin/, for the alert
# rule tests. The package is only downloaded and unpacked into the per-user
# cache, never installed: installing it would start a Prometheus server on
# the host (its postinst enables the service), which no test wants.
#   hack/install-promtool.sh      fast no-op when cached
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_BASE="${XDG_CACHE_HOME:-$HOME/.cache}/ikegate"
PKG=prometheus

log() { echo "install-promtool: $*" >&2; }

version="$(apt-cache policy "${PKG}" 2>/dev/null | awk '/Candidate:/ {print $2}')"
if [[ -z "${version}" || "${version}" == "(none)" ]]; then
  log "apt knows no ${PKG} package; run apt-get update (as root) first"
  exit 1
fi
dir="${CACHE_BASE}/promtool-${version//[:+~]/_}"
mkdir -p "${CACHE_BASE}" "${ROOT}/bin"
if [[ ! -x "${dir}/promtool" ]]; then
  exec 8>"${dir}.lock"
  flock 8
  if [[ ! -x "${dir}/promtool" ]]; then
    log "downloading ${PKG} ${version}"
    work="$(mktemp -d "${TMPDIR:-/tmp}/ikegate-promtool.XXXXXX")"
    trap 'rm -rf "${work}"' EXIT
    chmod 755 "${work}"  # apt-get download runs as _apt when it can
    # apt-get download needs no root and leaves dpkg's database alone.
    (cd "${work}" && apt-get -q download "${PKG}=${version}" >/dev/null)
    dpkg-deb -x "${work}"/${PKG}_*.deb "${work}/root"
    mkdir -p "${work}/out"
    mv "${work}/root/usr/bin/promtool" "${work}/out/promtool"
    rm -rf "${dir}"
    mv "${work}/out" "${dir}"
  fi
  exec 8>&-
fi
ln -sfn "${dir}/promtool" "${ROOT}/bin/promtool"
