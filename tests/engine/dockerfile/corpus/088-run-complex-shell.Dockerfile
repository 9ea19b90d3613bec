FROM alpine
RUN set -eux; \
    for i in 1 2 3; do echo "$i"; done; \
    [ -f /etc/os-release ] && cat /etc/os-release || true; \
    echo '${NOT_EXPANDED}' $(date) `uname`
