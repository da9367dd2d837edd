# The rushgate origin. Build: docker build -t rushgate-origin .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p rushgate-origin

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* && useradd --system rushgate
COPY --from=build /src/target/release/rushgate-origin /usr/local/bin/rushgate-origin
USER rushgate
ENV RUSHGATE_BIND=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK CMD curl -fs http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["rushgate-origin"]
CMD ["serve"]
