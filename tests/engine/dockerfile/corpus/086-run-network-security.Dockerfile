FROM alpine
RUN --network=none echo offline
RUN --network=host echo host
RUN --security=insecure echo priv
RUN --security=sandbox echo sand
