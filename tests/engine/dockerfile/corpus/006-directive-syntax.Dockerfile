# syntax=docker/dockerfile:1.7
FROM alpine
RUN echo syntax
