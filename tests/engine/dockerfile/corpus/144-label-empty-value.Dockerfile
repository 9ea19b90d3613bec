FROM alpine
LABEL a= b=""
