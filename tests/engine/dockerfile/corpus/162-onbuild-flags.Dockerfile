FROM alpine
ONBUILD RUN --mount=type=cache,target=/c make
ONBUILD COPY --from=other a b
