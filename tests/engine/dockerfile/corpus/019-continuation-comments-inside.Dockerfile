FROM alpine
RUN apk add \
# comment in the middle
    curl \
    # indented comment
    git
