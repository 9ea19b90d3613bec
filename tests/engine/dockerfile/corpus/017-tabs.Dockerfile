FROM	alpine	AS	build
RUN	echo	a
COPY	a	b
EXPOSE	80	443
