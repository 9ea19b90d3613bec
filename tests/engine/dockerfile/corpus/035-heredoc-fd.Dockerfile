FROM alpine
RUN cat 3<<EOF /dev/fd/3
from fd three
EOF
