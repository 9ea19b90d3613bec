FROM alpine AS Builder
FROM BUILDER
COPY --from=bUiLdEr / /
