# syntax=docker/dockerfile:1
# The agentbridge gateway as a container image.
#
#   docker build -t agentbridge --build-arg AGENTBRIDGE_GIT_COMMIT=$(git rev-parse --short=12 HEAD) .
#   docker run -p 4000:4000 -v "$PWD/config.yaml:/etc/agentbridge/config.yaml:ro" \
#     -e LITELLM_MASTER_KEY -e DATABASE_URL -e AWS_REGION agentbridge
#
# Build stage: the toolchain pinned in rust-toolchain.toml (scripts/test-image fails if the
# two disagree). Run stage: distroless "cc" (glibc, libgcc, CA certificates, a nonroot user,
# no shell), since the binary links glibc dynamically and nothing else.
ARG RUST_VERSION=1.95.0

FROM docker.io/library/rust:${RUST_VERSION}-slim-bookworm AS build
ARG RUST_VERSION
# The git commit `agentbridge --version` prints (.git is not sent to the build).
ARG AGENTBRIDGE_GIT_COMMIT=unknown
# rust-toolchain.toml also lists rustfmt and clippy, which a release build does not need:
# naming the toolchain keeps rustup from fetching them.
ENV RUSTUP_TOOLCHAIN=${RUST_VERSION} CARGO_INCREMENTAL=0 \
    AGENTBRIDGE_GIT_COMMIT=${AGENTBRIDGE_GIT_COMMIT}
WORKDIR /src
COPY . .
# Cache mounts keep the registry and the target directory between builds of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p agentbridge-cli \
 && install -D -m 0755 target/release/agentbridge /out/agentbridge \
 && mkdir -p /out/data

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/agentbridge /usr/local/bin/agentbridge
# A writable place for the SQLite key store when no PostgreSQL is configured
# (DATABASE_URL=sqlite:///var/lib/agentbridge/agentbridge.db, with a volume here).
COPY --from=build --chown=65532:65532 /out/data /var/lib/agentbridge
USER 65532:65532
WORKDIR /var/lib/agentbridge
EXPOSE 4000
# No shell or curl in the image: the binary calls its own liveliness endpoint.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/agentbridge", "healthcheck"]
# PID 1 is the gateway itself: SIGTERM (docker stop, Kubernetes) starts its graceful
# shutdown (stop accepting, finish requests for up to agentbridge.shutdown_grace_secs, flush
# spend). Give `docker stop -t` / terminationGracePeriodSeconds more than that grace.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/agentbridge"]
CMD ["--config", "/etc/agentbridge/config.yaml", "--host", "0.0.0.0", "--port", "4000"]
