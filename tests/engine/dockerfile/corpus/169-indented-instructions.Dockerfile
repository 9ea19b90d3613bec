   FROM alpine
	RUN echo indented
      CMD x
