FROM alpine
ENV A=a=b B="c=d"
