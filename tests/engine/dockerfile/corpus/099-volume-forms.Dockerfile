FROM alpine
VOLUME /data
VOLUME /a /b
VOLUME ["/json"]
