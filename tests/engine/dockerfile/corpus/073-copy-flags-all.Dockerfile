FROM alpine AS src
FROM alpine
COPY --from=src --chown=app:app --chmod=0644 --link --parents --exclude=*.tmp --exclude=**/.git /a /b /dst/
