

# leading comment

FROM alpine

# middle
   # indented comment
RUN true


