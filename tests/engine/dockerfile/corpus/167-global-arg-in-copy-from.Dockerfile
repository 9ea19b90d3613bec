ARG SRC=alpine
FROM $SRC AS src
FROM scratch
COPY --from=src / /
