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

# The agent runs as the distroless nonroot user (65532), in the gateway
# pod's group (fsGroup 65532), and needs CAP_NET_ADMIN for the gateway's
# nftables table. For a non-root container whose securityContext adds
# NET_ADMIN, the runtime leaves NET_ADMIN in the bounding and permitted
# sets and execs the entrypoint; without a file capability the kernel then
# gives the program an empty permitted set (nftables answers "operation not
# permitted"). The file capability cap_net_admin+ep makes NET_ADMIN
# effective on exec, also under no_new_privs (allowPrivilegeEscalation:
# false), because it stays within the permitted set the runtime held; it
# can never add a capability the pod did not grant. TestAgentRunsAsNonRoot
# runs the binary that way (setpriv as runc does it) with and without the
# capability.
#
# setcap writes the security.capability extended attribute. BuildKit's
# COPY --from keeps it (moby/moby#45128 shows it kept by 20.10 and current
# BuildKit; Docker 23.0's COPY --link dropped it, so no --link here); the
# legacy builder dropped it before moby/moby#42934, COPY from the build
# context drops it (moby/buildkit#2250), and kaniko drops it between
# stages (GoogleContainerTools/kaniko#2866). The capcheck stage makes such
# a builder fail the build instead of producing an agent that cannot
# program nftables.
RUN apt-get update -qq && apt-get install -qq -y --no-install-recommends libcap2-bin \
    && setcap cap_net_admin+ep /out/agent

FROM build AS capcheck
COPY --from=build /out/agent /checked/agent
RUN getcap /checked/agent | grep -q 'cap_net_admin=ep'

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=capcheck /checked/agent /agent
USER 65532:65532
ENTRYPOINT ["/agent"]
