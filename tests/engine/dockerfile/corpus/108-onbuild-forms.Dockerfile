FROM alpine
ONBUILD ADD . /app/src
ONBUILD RUN /usr/local/bin/python-build --dir /app/src
ONBUILD COPY --chown=1 a b
ONBUILD CMD ["x"]
