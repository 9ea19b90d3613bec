# escape=`
FROM alpine
RUN echo a `
  # comment `
  b `
  c
