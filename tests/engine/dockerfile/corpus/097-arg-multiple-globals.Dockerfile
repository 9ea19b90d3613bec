ARG A=1 B=2
ARG C
FROM alpine:$A
ARG A
RUN echo $A $B $C
