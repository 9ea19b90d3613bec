FROM alpine
COPY --exclude=a\ b --chown=c\"d src dst
