FROM alpine
ARG A=\"quoted\" B='it'\''s' C="a\\b"
