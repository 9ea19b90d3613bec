FROM alpine
RUN apk add \
    curl \
    git \
    make
