FROM alpine
RUN --network=none -- --not-a-flag
