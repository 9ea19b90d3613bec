FROM alpine
RUN -x echo
COPY -a b c
