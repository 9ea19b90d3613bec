# escape=`
FROM alpine
ENV A=x` y B="q`"r"
RUN echo `
  done
