FROM alpine
HEALTHCHECK CMD ["curl", "-f", "http://localhost/"]
