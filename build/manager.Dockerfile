# syntax=docker/dockerfile:1
#
# The ikegate controller manager.
#
#   docker build -f build/manager.Dockerfile -t ghcr.io/ikegate/manager:v0.1.0 .
#
# The project's development and CI machines have no container engine, so this
# file has never been built there; `make test` builds ./cmd/manager and checks
# that it accepts the flags the chart passes, but not this image. The base
# images are named by tag: pin them by digest in the pipeline that publishes
# releases.

ARG GO_VERSION=1.26.8

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Dependencies first: this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS=linux
ARG TARGETARCH
# Cross-compiled on the build platform; static, so it runs on distroless/static.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w" -o /out/manager ./cmd/manager

# The manager only talks to the API server: no shell, no package manager,
# and the distroless nonroot user (65532), which the chart's
# runAsNonRoot/runAsUser match.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/manager /manager
USER 65532:65532
ENTRYPOINT ["/manager"]
