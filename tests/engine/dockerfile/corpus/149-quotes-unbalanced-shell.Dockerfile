FROM alpine
RUN echo "unbalanced
RUN echo 'also
