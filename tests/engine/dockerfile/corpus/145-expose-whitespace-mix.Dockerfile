FROM alpine
EXPOSE  80 	 81
