FROM alpine
WORKDIR /app/
WORKDIR ../x
