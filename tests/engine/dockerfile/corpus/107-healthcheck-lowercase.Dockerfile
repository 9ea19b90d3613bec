FROM alpine
healthcheck --retries=1 cmd true
healthcheck none
