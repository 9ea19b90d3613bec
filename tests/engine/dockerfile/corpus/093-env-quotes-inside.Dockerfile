FROM alpine
ENV MSG="he said \"hi\"" X=a"b c"d
