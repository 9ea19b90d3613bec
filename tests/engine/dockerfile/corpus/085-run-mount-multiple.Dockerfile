FROM alpine AS tools
FROM alpine
RUN --mount=type=bind,from=tools,source=/bin,target=/tools --mount=type=secret,id=npmrc,target=/root/.npmrc --mount=type=ssh --mount=type=tmpfs,target=/tmp true
