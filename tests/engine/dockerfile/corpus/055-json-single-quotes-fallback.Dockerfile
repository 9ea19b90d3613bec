FROM alpine
CMD ['echo', 'hello']
ENTRYPOINT ['sh']
