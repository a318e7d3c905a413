# syntax=docker/dockerfile:1
#
# The ikegate agent: the sidecar of every gateway pod. It drives charon over
# the VICI socket the two containers share and programs the gateway's
# nftables table over netlink (github.com/google/nftables, pure Go: no nft
# binary is needed in the image).
#
#   docker build -f build/agent.Dockerfile -t ghcr.io/ikegate/agent:v0.1.0 .
#
# The project's development and CI machines have no container engine, so this
# file has never been built there; `make test` runs the agent's code against
# real charons in network namespaces, but not this image. Pin the base images
# by digest in the pipeline that publishes releases.

ARG GO_VERSION=1.26.8

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS=linux
ARG TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w" -o /out/agent ./cmd/agent

# Why this image runs as root (uid 0) and not as the distroless nonroot user:
# - The agent needs CAP_NET_ADMIN to program nftables (and routes) in the
#   pod's network namespace, the node's under hostNetwork. Kubernetes grants
#   added capabilities to a non-root process only through file capabilities,
#   which the kernel ignores under no_new_privs (allowPrivilegeEscalation:
#   false), and it sets no ambient capabilities; so only uid 0 can use them.
# - charon creates the VICI socket owned by root with mode 0770.
# The gateway pod therefore runs this container as uid 0 with every
# capability dropped but NET_ADMIN, no privilege escalation, a read-only root
# filesystem and the RuntimeDefault seccomp profile. Where the gateway is
# exposed through a LoadBalancer Service (no hostNetwork) the pod can also set
# hostUsers: false, and uid 0 then maps to an unprivileged user on the node;
# hostNetwork pods cannot use a user namespace, so there uid 0 is the node's
# root, held to NET_ADMIN by the capability set.
FROM gcr.io/distroless/static-debian12:latest
COPY --from=build /out/agent /agent
USER 0:0
ENTRYPOINT ["/agent"]
