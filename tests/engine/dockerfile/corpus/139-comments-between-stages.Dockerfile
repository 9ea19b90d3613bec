# stage one
FROM alpine AS one
# does things
RUN true

# stage two
FROM one
# the end
