FROM alpine
RUN echo a \
# trailing comment
