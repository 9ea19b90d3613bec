FROM alpine
COPY --chown= --chmod="" a b
