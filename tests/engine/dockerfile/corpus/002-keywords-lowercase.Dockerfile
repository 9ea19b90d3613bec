from alpine
run echo hi
cmd echo done
workdir /app
user nobody
