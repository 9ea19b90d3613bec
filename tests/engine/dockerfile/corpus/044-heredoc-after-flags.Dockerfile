FROM alpine
RUN --mount=type=cache,target=/c <<EOF
echo cached
EOF
