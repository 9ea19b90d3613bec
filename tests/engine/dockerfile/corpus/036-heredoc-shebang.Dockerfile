FROM python:3
RUN <<EOF
#!/usr/bin/env python3
print('hi')
EOF
