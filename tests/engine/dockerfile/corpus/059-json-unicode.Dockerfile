FROM alpine
CMD ["echo", "héllo wörld ✓"]
LABEL description="ünïcödé"
