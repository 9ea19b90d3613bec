# syntax=docker/dockerfile:1
FROM rust:1.75 AS build
WORKDIR /app
RUN --mount=type=bind,source=src,target=src \
    --mount=type=cache,target=/app/target/ \
    <<EOF
set -e
cargo build --locked --release
cp ./target/release/app /bin/server
EOF

FROM debian:bookworm-slim
ARG UID=10001
RUN adduser \
    --disabled-password \
    --gecos "" \
    --home "/nonexistent" \
    --shell "/sbin/nologin" \
    --no-create-home \
    --uid "${UID}" \
    appuser
USER appuser
COPY --from=build /bin/server /bin/
CMD ["/bin/server"]
