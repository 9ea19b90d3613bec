FROM alpine
CMD ["a", NaN]
