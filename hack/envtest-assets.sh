#!/usr/bin/env bash
# Builds the envtest control plane (kube-apiserver, etcd) and kubectl from the Go
# module proxy and installs them into bin/k8s/.
#
# No release binaries can be downloaded in our build environments, so the
# binaries are compiled from source modules. The result is cached per user and
# per version in ${XDG_CACHE_HOME:-$HOME/.cache}/ikegate/envtest-<versions>/,
# so another clone on the same machine reuses it in seconds. bin/k8s is a
# symlink to that cache directory. Safe to run repeatedly and concurrently.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.37.2}"      # k8s.io/kubernetes
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"    # go.etcd.io/etcd/server/v3
WITH_KUBECTL="${WITH_KUBECTL:-1}"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GOOS="$(go env GOOS)"
GOARCH="$(go env GOARCH)"
CACHE_BASE="${XDG_CACHE_HOME:-$HOME/.cache}/ikegate"
KEY="envtest-k8s-${K8S_VERSION}-etcd-${ETCD_VERSION}-${GOOS}-${GOARCH}"
CACHE_DIR="${CACHE_BASE}/${KEY}"
OUT_LINK="${ROOT}/bin/k8s"

log() { echo "envtest-assets: $*" >&2; }

want=(kube-apiserver etcd)
[[ "${WITH_KUBECTL}" == 1 ]] && want+=(kubectl)

complete() {
  local b
  for b in "${want[@]}"; do
    [[ -x "${CACHE_DIR}/${b}" ]] || return 1
  done
}

link_bin() {
  mkdir -p "${ROOT}/bin"
  # bin/k8s -> cache dir. Replace whatever is there (old symlink or directory).
  if [[ -L "${OUT_LINK}" && "$(readlink "${OUT_LINK}")" == "${CACHE_DIR}" ]]; then
    return 0
  fi
  local tmp="${ROOT}/bin/.k8s.$$"
  ln -sfn "${CACHE_DIR}" "${tmp}"
  if [[ -d "${OUT_LINK}" && ! -L "${OUT_LINK}" ]]; then rm -rf "${OUT_LINK}"; fi
  mv -Tf "${tmp}" "${OUT_LINK}"
}

if complete; then
  link_bin
  log "using cached ${CACHE_DIR}"
  exit 0
fi

mkdir -p "${CACHE_BASE}"
# Serialise concurrent builders (two clones, parallel make) on one lock.
exec 9>"${CACHE_BASE}/${KEY}.lock"
flock 9
if complete; then
  link_bin
  log "using cached ${CACHE_DIR} (built by another process)"
  exit 0
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/ikegate-envtest.XXXXXX")"
trap 'rm -rf "${WORK}"' EXIT
STAGE="${WORK}/out"
mkdir -p "${STAGE}"

export GOFLAGS="-mod=mod -buildvcs=false"
export CGO_ENABLED=0
export GOWORK=off

start=$(date +%s)

# ---- kube-apiserver (+ kubectl) from k8s.io/kubernetes ----------------------
log "building kube-apiserver ${K8S_VERSION}"
K8S_MOD="${WORK}/k8s"
mkdir -p "${K8S_MOD}"
# k8s.io/kubernetes requires its staging repos at v0.0.0 and replaces them with
# ./staging paths, which do not exist outside its repo. Replace each with the
# published k8s.io/<repo> v0.<minor>.<patch>.
modinfo="$(cd "${K8S_MOD}" && go mod download -json "k8s.io/kubernetes@${K8S_VERSION}")"
gomod="$(printf '%s\n' "${modinfo}" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
[[ -f "${gomod}" ]] || { log "cannot find go.mod of k8s.io/kubernetes@${K8S_VERSION}"; exit 1; }
staging_version="v0.${K8S_VERSION#v1.}"
staging=$(awk '
  /^require[[:space:]]*\(/ {inreq=1; next}
  inreq && /^\)/ {inreq=0; next}
  inreq && $1 ~ /^k8s\.io\// && $2 == "v0.0.0" {print $1}
' "${gomod}")
[[ -n "${staging}" ]] || { log "no staging repos found in ${gomod}"; exit 1; }
{
  echo "module ikegate.local/envtest-k8s"
  echo
  echo "go $(go env GOVERSION | sed 's/^go//; s/^\([0-9]*\.[0-9]*\).*/\1/')"
  echo
  echo "require k8s.io/kubernetes ${K8S_VERSION}"
  echo
  echo "replace ("
  for r in ${staging}; do echo "	${r} => ${r} ${staging_version}"; done
  echo ")"
} > "${K8S_MOD}/go.mod"
k8s_pkgs=(k8s.io/kubernetes/cmd/kube-apiserver)
[[ "${WITH_KUBECTL}" == 1 ]] && k8s_pkgs+=(k8s.io/kubernetes/cmd/kubectl)
minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
vpkg=k8s.io/component-base/version
k8s_ldflags="-s -w -X ${vpkg}.gitVersion=${K8S_VERSION} -X ${vpkg}.gitMajor=1 -X ${vpkg}.gitMinor=${minor} -X ${vpkg}.gitTreeState=clean -X ${vpkg}.buildDate=1970-01-01T00:00:00Z"
(
  cd "${K8S_MOD}"
  go get "k8s.io/kubernetes@${K8S_VERSION}" >/dev/null
  for p in "${k8s_pkgs[@]}"; do
    log "  go build ${p}"
    go build -trimpath -ldflags "${k8s_ldflags}" -o "${STAGE}/$(basename "${p}")" "${p}"
  done
)

# ---- etcd from go.etcd.io/etcd/server/v3 (package main at the module root) --
log "building etcd ${ETCD_VERSION}"
ETCD_MOD="${WORK}/etcd"
mkdir -p "${ETCD_MOD}"
cat > "${ETCD_MOD}/go.mod" <<MOD
module ikegate.local/envtest-etcd

go $(go env GOVERSION | sed 's/^go//; s/^\([0-9]*\.[0-9]*\).*/\1/')

require go.etcd.io/etcd/server/v3 ${ETCD_VERSION}
MOD
(
  cd "${ETCD_MOD}"
  go get "go.etcd.io/etcd/server/v3@${ETCD_VERSION}" >/dev/null
  go build -trimpath -ldflags "-s -w" -o "${STAGE}/etcd" go.etcd.io/etcd/server/v3
)

"${STAGE}/kube-apiserver" --version >&2
"${STAGE}/etcd" --version | head -1 >&2
[[ -x "${STAGE}/kubectl" ]] && "${STAGE}/kubectl" version --client >&2

# Publish atomically: a half-built cache dir is never visible.
rm -rf "${CACHE_DIR}.tmp"
mv "${STAGE}" "${CACHE_DIR}.tmp"
rm -rf "${CACHE_DIR}"
mv "${CACHE_DIR}.tmp" "${CACHE_DIR}"
link_bin
log "built in $(( $(date +%s) - start ))s into ${CACHE_DIR}"
