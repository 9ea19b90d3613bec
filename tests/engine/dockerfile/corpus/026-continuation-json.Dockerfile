FROM alpine
CMD ["echo", \
     "hello", \
     "world"]
