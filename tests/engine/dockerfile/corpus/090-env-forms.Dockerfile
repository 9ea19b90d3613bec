FROM alpine
ENV A=1
ENV B="two words" C=three\ words D='single $A'
ENV E legacy form with spaces
ENV F=
