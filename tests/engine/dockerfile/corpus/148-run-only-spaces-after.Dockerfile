FROM alpine
RUN   echo   spaced   
