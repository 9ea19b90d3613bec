ARG GLOBAL=1
FROM alpine
ARG A
ARG B=2
ARG C="three four" D
ARG E=
ARG F=$B-x
