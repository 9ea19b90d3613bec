FROM alpine
CMD ["sh", "-c", "echo $HOME && ls | wc -l"]
