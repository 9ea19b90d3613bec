FROM alpine
CMD ["echo"] and more
ENTRYPOINT ["a"]b
