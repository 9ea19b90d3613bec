FROM alpine
COPY ["src file", "dst dir/"]
ADD ["a", "b", "/c/"]
VOLUME ["/data", "/logs"]
