FROM alpine
RUN \
  <<EOF \
  sh
echo hi
EOF
