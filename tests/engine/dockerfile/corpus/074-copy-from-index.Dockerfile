FROM alpine
RUN echo > /x
FROM busybox
COPY --from=0 /x /x
