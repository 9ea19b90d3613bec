# ESCAPE=`
FROM alpine
RUN echo `
  x
