FROM alpine
RUN cat >/etc/motd <<'EOF'
Welcome $USER
EOF
