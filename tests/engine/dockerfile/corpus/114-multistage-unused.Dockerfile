FROM alpine AS unused
RUN sleep 100
FROM alpine AS used
RUN echo used
FROM scratch
COPY --from=used / /
