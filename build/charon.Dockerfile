# syntax=docker/dockerfile:1
#
# strongSwan's IKE daemon (charon) for ikegate's gateway pods: Debian 12
# (bookworm) packages of strongSwan 5.9.8, the version every ikegate test runs
# against (hack/install-strongswan.sh installs the same packages).
#
#   docker build -f build/charon.Dockerfile -t ghcr.io/ikegate/charon:v0.1.0 .
#
# The project's development and CI machines have no container engine, so this
# file has never been built there; the package names and the version glob
# were checked with apt on Debian 12. Pin the base image by digest in the
# pipeline that publishes releases.
#
# One stage: there is nothing to compile, and copying the installed files
# into another base by hand would drop dpkg's record of them, which image
# scanners read to report strongSwan's security updates.

FROM debian:bookworm-slim

# Debian's 5.9.8-5+deb12u<N>: the version is fixed at 5.9.8 and the glob takes
# the newest bookworm security update (old +deb12u builds leave the mirror).
ARG STRONGSWAN_VERSION=5.9.8-5+deb12u*

# charon-systemd: the daemon without the legacy starter/ipsec.conf stack;
#   outside systemd it logs through the filelog settings ikegate renders.
# strongswan-swanctl: swanctl, for `kubectl exec ... swanctl --list-sas`.
# libcharon-extra-plugins: kernel-libipsec (the userspace data plane),
#   eap-radius and the other plugins the gateway's settings load.
# libcharon-extauth-plugins: eap-mschapv2 and eap-identity, the mobile
#   clients' EAP-MSCHAPv2 login.
# libstrongswan-standard-plugins: openssl and the other crypto plugins.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      "charon-systemd=${STRONGSWAN_VERSION}" \
      "strongswan-swanctl=${STRONGSWAN_VERSION}" \
      "strongswan-libcharon=${STRONGSWAN_VERSION}" \
      "libstrongswan=${STRONGSWAN_VERSION}" \
      "libstrongswan-standard-plugins=${STRONGSWAN_VERSION}" \
      "libcharon-extra-plugins=${STRONGSWAN_VERSION}" \
      "libcharon-extauth-plugins=${STRONGSWAN_VERSION}" \
 && rm -rf /var/lib/apt/lists/* \
 && dpkg-query -W -f='${Package} ${Version}\n' charon-systemd strongswan-swanctl \
      libcharon-extra-plugins libcharon-extauth-plugins

# strongswan.conf comes from the gateway's charon ConfigMap mounted at
# /etc/ikegate/strongswan (api/v1alpha1 CharonConfDir); charon reads it only at
# start, so a change restarts the container. It sets the VICI socket to
# unix:///run/ikegate/charon.vici in the emptyDir the agent shares
# (VICISocketDir), and logs to stderr for `kubectl logs`.
ENV STRONGSWAN_CONF=/etc/ikegate/strongswan/strongswan.conf

# Runs as root (uid 0), for the reasons the agent's Dockerfile gives: charon
# needs CAP_NET_ADMIN (XFRM, routes, and the ipsec0 TUN device of
# kernel-libipsec) and CAP_NET_BIND_SERVICE (UDP 500 and 4500), and Kubernetes
# can hand capabilities only to uid 0. Measured with charon-systemd 5.9.8 on a
# bounding set of exactly those two: it binds 500/4500, creates ipsec0 and
# serves VICI; only the agent, connmark, farp, dhcp and xauth-pam plugins,
# which ikegate does not use, refuse to load. The userspace data plane also
# needs /dev/net/tun in the container.
USER 0:0
EXPOSE 500/udp 4500/udp

# The manager's gateway pods run the same command; they mount the ConfigMap
# at STRONGSWAN_CONF, the VICI emptyDir at /run/ikegate and an emptyDir at
# /run, so the root filesystem can stay read-only.
ENTRYPOINT ["/usr/sbin/charon-systemd"]
