FROM alpine
ENTRYPOINT exec top -b
CMD ["--help"]
