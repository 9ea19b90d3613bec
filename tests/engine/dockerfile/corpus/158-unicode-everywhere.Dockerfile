FROM alpine
LABEL name="日本語" emoji="🐳"
RUN echo "Grüße" > /ü
COPY --chown=ü ä ö
