#!/usr/bin/env bash
# Installs the project's build tools into bin/, built from the Go module proxy
# and cached per user and version in ${XDG_CACHE_HOME:-$HOME/.cache}/ikegate/.
#   hack/tools.sh [controller-gen|helm]...   (default: all)
set -euo pipefail

CONTROLLER_TOOLS_VERSION="${CONTROLLER_TOOLS_VERSION:-v0.23.0}"
HELM_VERSION="${HELM_VERSION:-v3.22.0}"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_BASE="${XDG_CACHE_HOME:-$HOME/.cache}/ikegate"
PLATFORM="$(go env GOOS)-$(go env GOARCH)"

log() { echo "tools: $*" >&2; }

# install_tool NAME VERSION MODULE PACKAGE [EXTRA_LDFLAGS]
#   Builds PACKAGE (main package inside MODULE@VERSION) as NAME into
#   $CACHE_BASE/NAME-VERSION-PLATFORM/NAME and links bin/NAME to it.
install_tool() {
  local name="$1" version="$2" module="$3" pkg="$4" ldflags="-s -w ${5:-}"
  local dir="${CACHE_BASE}/${name}-${version}-${PLATFORM}"
  local bin="${dir}/${name}"
  mkdir -p "${ROOT}/bin" "${CACHE_BASE}"
  if [[ ! -x "${bin}" ]]; then
    exec 8>"${dir}.lock"
    flock 8
    if [[ ! -x "${bin}" ]]; then
      log "building ${name} ${version}"
      local work; work="$(mktemp -d "${TMPDIR:-/tmp}/ikegate-tool.XXXXXX")"
      mkdir -p "${work}/out"
      # First choice: plain go install. It refuses modules with replace
      # directives; then build from a scratch module that requires it.
      if ! (cd "${work}" && GOWORK=off GOFLAGS=-buildvcs=false GOBIN="${work}/out" CGO_ENABLED=0 \
              go install -trimpath -ldflags "${ldflags}" "${pkg}@${version}") 2>"${work}/install.err"; then
        log "go install ${pkg}@${version} failed; building from a scratch module"
        sed 's/^/  /' "${work}/install.err" | tail -5 >&2
        mkdir -p "${work}/mod"
        (
          cd "${work}/mod"
          export GOWORK=off GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0
          go mod init ikegate.local/tool-"${name}" >/dev/null 2>&1
          go get "${module}@${version}" >/dev/null
          go build -trimpath -ldflags "${ldflags}" -o "${work}/out/$(basename "${pkg}")" "${pkg}"
        )
      fi
      local built="${work}/out/$(basename "${pkg}")"
      [[ "$(basename "${pkg}")" == "${name}" ]] || mv "${built}" "${work}/out/${name}"
      rm -rf "${dir}"
      mv "${work}/out" "${dir}"
      rm -rf "${work}"
    fi
    exec 8>&-
  fi
  ln -sfn "${bin}" "${ROOT}/bin/${name}"
}

tools=("$@")
[[ ${#tools[@]} -gt 0 ]] || tools=(controller-gen helm)
for t in "${tools[@]}"; do
  case "$t" in
    controller-gen)
      install_tool controller-gen "${CONTROLLER_TOOLS_VERSION}" \
        sigs.k8s.io/controller-tools sigs.k8s.io/controller-tools/cmd/controller-gen ;;
    helm)
      # helm's version is stamped at link time, as its release build does.
      install_tool helm "${HELM_VERSION}" helm.sh/helm/v3 helm.sh/helm/v3/cmd/helm \
        "-X helm.sh/helm/v3/internal/version.version=${HELM_VERSION} -X helm.sh/helm/v3/internal/version.gitTreeState=clean" ;;
    *) log "unknown tool $t"; exit 2 ;;
  esac
done
