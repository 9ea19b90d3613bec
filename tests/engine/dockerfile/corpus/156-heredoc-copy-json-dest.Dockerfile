FROM alpine
COPY ["<<EOF", "/x"]
