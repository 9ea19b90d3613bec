FROM alpine
RUN --network=none ["echo", "json"]
