FROM alpine
RUN echo bom
