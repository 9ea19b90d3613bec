FROM alpine
RUN echo \\
RUN echo done
