FROM alpine
ADD <<EOF /x
add body
EOF
