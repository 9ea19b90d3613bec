FROM alpine
RUN <<EOF
echo crlf
EOF
