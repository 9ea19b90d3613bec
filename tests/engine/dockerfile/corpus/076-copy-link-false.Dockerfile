FROM alpine
COPY --link=false a b
COPY --link=true c d
