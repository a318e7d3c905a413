#!/usr/bin/env bash
# Installs the Debian packages the gateway and its tests need: strongSwan
# (charon + swanctl + pki + extra plugins such as kernel-libipsec and EAP) and
# the network tools used to build test namespaces, and FreeRADIUS, the real
# RADIUS server the EAP-RADIUS tests authenticate against (each test runs its
# own in a network namespace). Fast no-op when present.
set -euo pipefail

# libcharon-extauth-plugins (eap-mschapv2) and libstrongswan-standard-plugins
# are only Recommends of the packages above; list them so they are always there.
# libcap2-bin (setcap) and util-linux (setpriv) run the agent and charon with
# a container's user and capabilities (TestAgentRunsAsNonRoot).
PKGS=(charon-systemd strongswan-swanctl strongswan-pki libcharon-extra-plugins
      libcharon-extauth-plugins libstrongswan-standard-plugins
      iputils-ping iproute2 nftables freeradius libcap2-bin util-linux)

missing=()
for p in "${PKGS[@]}"; do
  st="$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)"
  [[ "$st" == installed ]] || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

if [[ "$(id -u)" != 0 ]]; then
  # Without root the tests that use these packages skip (require.Root),
  # unless IKEGATE_REQUIRE_ROOT_TESTS=1 demands them.
  echo "install-strongswan: missing ${missing[*]}; run as root to install them" >&2
  [[ "${IKEGATE_REQUIRE_ROOT_TESTS:-0}" == 1 ]] && exit 1
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
# Wait for another apt/dpkg run instead of failing on its lock.
APT_OPTS=(-q -y -o DPkg::Lock::Timeout=600
          -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

echo "install-strongswan: installing ${missing[*]}" >&2
# Package lists on a fresh machine may be stale (older point releases are
# gone from the mirror), so refresh them first. A failing extra source must
# not stop us; the install below tells whether what we need is there.
apt-get -q -o DPkg::Lock::Timeout=600 update >/dev/null 2>&1 \
  || echo "install-strongswan: apt-get update reported errors; trying install anyway" >&2
if ! apt-get "${APT_OPTS[@]}" install "${missing[@]}" >/tmp/ikegate-apt.log 2>&1; then
  cat /tmp/ikegate-apt.log >&2
  echo "install-strongswan: apt-get install failed" >&2
  exit 1
fi

# charon-systemd's unit may try to start on install; the gateway runs its own
# charon processes, so keep a system-wide one out of the way.
# Likewise freeradius, whose postinst starts it unless policy-rc.d forbids:
# a daemon on the host's 1812/1813 would answer no test and only get in the
# way of a real one.
if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
  systemctl disable --now strongswan.service >/dev/null 2>&1 || true
  systemctl disable --now freeradius.service >/dev/null 2>&1 || true
elif [[ -s /run/freeradius/freeradius.pid ]]; then
  invoke-rc.d freeradius stop >/dev/null 2>&1 || kill "$(cat /run/freeradius/freeradius.pid)" 2>/dev/null || true
fi
echo "install-strongswan: done" >&2
