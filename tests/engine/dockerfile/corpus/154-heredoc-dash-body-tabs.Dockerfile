FROM alpine
RUN <<-EOF
		line with tabs
  line with spaces
	EOF
