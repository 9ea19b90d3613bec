FROM alpine
COPY a --chown=1 b
RUN echo --mount=x
