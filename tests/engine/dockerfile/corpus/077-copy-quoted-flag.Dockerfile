FROM alpine
COPY --chown="user:group" --exclude='*.md' a b
