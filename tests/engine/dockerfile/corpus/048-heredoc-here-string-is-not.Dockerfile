FROM alpine
RUN cat <<<word
