FROM alpine
ONBUILD RUN <<EOF
echo onbuild
EOF
RUN after
