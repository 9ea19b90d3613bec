FROM alpine
RUN <<E"O"F
echo $HOME
EOF
