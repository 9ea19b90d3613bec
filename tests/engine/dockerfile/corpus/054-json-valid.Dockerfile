FROM alpine
CMD ["echo", "hello world"]
ENTRYPOINT ["/bin/sh", "-c"]
RUN ["apk", "add", "curl"]
