FROM alpine
CMD ["echo", "\u0041\t\"q\"", "\\"]
