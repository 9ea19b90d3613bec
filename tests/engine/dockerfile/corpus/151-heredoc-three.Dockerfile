FROM alpine
COPY <<a <<b <<c /d/
1
a
2
b
3
c
