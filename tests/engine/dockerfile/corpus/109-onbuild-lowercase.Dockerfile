FROM alpine
onbuild run echo lower
ONBUILD env A=1 B=2
