FROM alpine
HEALTHCHECK --timeout=1s CMD ['bad', 'json']
