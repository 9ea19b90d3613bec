FROM alpine
COPY <<-'CONF' /c
	literal $X
  CONF
		CONF
RUN after
