# escape=`
FROM alpine
LABEL a="x`"y" b=c` d
