FROM alpine
RUN --mount=type=secret,id="my secret",target=/s cat /s
