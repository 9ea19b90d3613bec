FROM alpine
COPY hom* /mydir/
COPY hom?.txt /mydir/
COPY [[]a].txt /x/
