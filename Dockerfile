# zkwiki-server as a container image whose server runs as an unprivileged user (uid 10001).
#
#   docker build -t zkwiki-server .
#   docker run -d --name zkwiki -p 127.0.0.1:8080:8080 -v zkwiki-data:/data zkwiki-server
#
# TLS, the web app, backups and metrics: docs/deploy.md ("Container").

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p server --bin zkwiki-server \
 && install -m 0755 target/release/zkwiki-server /usr/local/bin/zkwiki-server

FROM debian:bookworm-slim
# git: `git http-backend` serves `git clone`. Nothing else is needed at run time.
RUN apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 zkwiki \
 && useradd --system --uid 10001 --gid zkwiki --home-dir /data --shell /usr/sbin/nologin zkwiki \
 && mkdir -p /data /web \
 && chown zkwiki:zkwiki /data \
 && chmod 0700 /data
COPY --from=build /usr/local/bin/zkwiki-server /usr/local/bin/zkwiki-server
USER 10001:10001
ENV ZKWIKI_SERVER_DATA_DIR=/data \
    ZKWIKI_SERVER_LISTEN=0.0.0.0:8080 \
    ZKWIKI_SERVER_LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/zkwiki-server"]
