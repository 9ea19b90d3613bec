FROM alpine
LABEL org.opencontainers.image.source=https://github.com/x/y \
      org.opencontainers.image.licenses=MIT
