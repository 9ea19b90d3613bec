FROM alpine
RUN <<EOF
FROM not-an-instruction
RUN neither
# not a comment

EOF
CMD done
