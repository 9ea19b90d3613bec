FROM alpine
COPY ["my file.txt", "/dest dir/"]
