# syntax=docker/dockerfile:1
# fluxroute container image.
#
#   docker build -t fluxroute .
#   docker run -v $PWD/fluxroute.toml:/etc/fluxroute/fluxroute.toml:ro -v fluxroute-queue:/var/lib/fluxroute \
#     -p 8086:8086 -p 8087:8087 fluxroute
#
# The config is not baked in: mount it at /etc/fluxroute/fluxroute.toml. In a container both
# listeners must bind 0.0.0.0 (`[ingest] listen = "0.0.0.0:8086"`, `[admin] listen =
# "0.0.0.0:8087"`), and a non-loopback admin listener needs `[admin] token`. With the embedded
# queue, put its `dir` under /var/lib/fluxroute (the queue volume). deploy/compose.yaml runs the
# whole stack. tests/observability.rs checks that every file copied here exists and that the
# ports below match deploy/fluxroute.toml and deploy/compose.yaml.

ARG RUST_VERSION=1.90

# --- build: a release binary; librdkafka is built from source by rdkafka-sys (bundled, recent),
# with TLS and SASL/SCRAM against the system's OpenSSL; gzip is ISA-L's igzip (Debian's libisal).
FROM rust:${RUST_VERSION}-bookworm AS builder
RUN apt-get update \
 && apt-get install -y --no-install-recommends make perl python3 pkg-config libssl-dev libisal-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
COPY examples ./examples
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin fluxroute \
 && install -D -m 0755 target/release/fluxroute /out/fluxroute

# --- runtime: slim Debian, non-root, curl for the health check, libssl3 for librdkafka's TLS,
# libisal2 for gzip.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl libssl3 libisal2 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 fluxroute \
 && useradd --system --uid 10001 --gid fluxroute --home-dir /var/lib/fluxroute --no-create-home \
      --shell /usr/sbin/nologin fluxroute \
 && mkdir -p /etc/fluxroute /var/lib/fluxroute \
 && chown fluxroute:fluxroute /var/lib/fluxroute
COPY --from=builder /out/fluxroute /usr/local/bin/fluxroute

# Config (read-only mount) and the embedded queue's data; the working directory is the data
# volume, so the embedded queue's default relative dir "var/queue" lands in it too.
VOLUME ["/etc/fluxroute", "/var/lib/fluxroute"]
WORKDIR /var/lib/fluxroute
USER fluxroute:fluxroute

# Ingest (InfluxDB's write API) and admin (/metrics, ops API).
EXPOSE 8086 8087

ENV FLUXROUTE_HEALTH_URL=http://127.0.0.1:8086/health
# /health answers 200 while the queue is reachable, 503 otherwise.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD curl -fsS --max-time 3 "$FLUXROUTE_HEALTH_URL" >/dev/null || exit 1

# SIGTERM starts the ordered shutdown (bounded by [shutdown] grace, 30s by default): give the
# container longer than that before it is killed (compose: stop_grace_period).
STOPSIGNAL SIGTERM
ENTRYPOINT ["fluxroute"]
CMD ["serve", "--config", "/etc/fluxroute/fluxroute.toml"]
