FROM alpine
COPY --chown="a b" --exclude="x y" src dst
