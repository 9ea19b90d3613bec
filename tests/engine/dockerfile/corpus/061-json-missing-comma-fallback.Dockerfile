FROM alpine
CMD ["echo" "hi"]
