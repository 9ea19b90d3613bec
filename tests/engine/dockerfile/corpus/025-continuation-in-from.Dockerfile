FROM \
  alpine:3 \
  AS \
  base
RUN true
