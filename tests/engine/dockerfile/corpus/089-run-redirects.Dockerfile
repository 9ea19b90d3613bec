FROM alpine
RUN echo hi > /a 2>&1 && cat < /a >> /b
