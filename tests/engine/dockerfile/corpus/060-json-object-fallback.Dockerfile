FROM alpine
CMD {"a": 1}
