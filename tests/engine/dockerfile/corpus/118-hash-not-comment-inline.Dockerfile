FROM alpine
RUN echo hello # this is not a comment
ENV A=b#c
