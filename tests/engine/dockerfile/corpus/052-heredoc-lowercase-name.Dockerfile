FROM alpine
RUN <<eof
body
eof
