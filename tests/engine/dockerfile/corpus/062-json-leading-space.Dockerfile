FROM alpine
CMD    [ "echo" , "x" ]   
