FROM alpine as builder
FROM builder
