FROM alpine




RUN true


