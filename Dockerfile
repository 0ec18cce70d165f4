# syntax=docker/dockerfile:1
# The doppel server image: `docker build -t doppel:dev .` (BuildKit, the default since
# Docker 23). Runs as the distroless `nonroot` user (65532), no shell in the runtime image
# (the pods' preStop uses the kubelet's `sleep` action, Kubernetes >= 1.30).

FROM rust:1-bookworm AS builder
# Extra cargo features (`--build-arg CARGO_FEATURES=...`); none by default (rediss:// and
# TLS on the public port are built in).
ARG CARGO_FEATURES=""
WORKDIR /src
# protobuf is compiled by protox (pure Rust): no protoc needed.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p doppel ${CARGO_FEATURES:+--features "$CARGO_FEATURES"} \
 && install -D -m 0755 target/release/doppel /out/usr/local/bin/doppel \
 && install -d -m 0750 -o 65532 -g 65532 /out/data

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /out/usr/local/bin/doppel /usr/local/bin/doppel
COPY --from=builder --chown=65532:65532 /out/data /data
# Listen on all interfaces inside the container; keep the store / snapshots under /data
# (a volume in Kubernetes). Flags and the pods' env override both. Off loopback, `serve`
# needs DOPPEL__AUTH__API_KEYS_FILE (or --allow-unauthenticated) and exits 64 without it.
ENV DOPPEL__SERVER__LISTEN=0.0.0.0:50051 \
    DOPPEL__STORE__DATA_DIR=/data
USER 65532:65532
WORKDIR /data
VOLUME ["/data"]
EXPOSE 50051 50061
ENTRYPOINT ["/usr/local/bin/doppel"]
CMD ["serve"]
