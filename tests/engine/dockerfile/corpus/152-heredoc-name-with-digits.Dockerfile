FROM alpine
RUN <<EOF2
body
EOF2
