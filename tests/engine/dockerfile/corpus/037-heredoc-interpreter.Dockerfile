FROM python:3
RUN python3 <<EOF
with open('/hello', 'w') as f:
    print('Hello', file=f)
EOF
