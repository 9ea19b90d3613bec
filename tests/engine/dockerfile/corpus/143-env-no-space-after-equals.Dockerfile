FROM alpine
ENV A= B=1
