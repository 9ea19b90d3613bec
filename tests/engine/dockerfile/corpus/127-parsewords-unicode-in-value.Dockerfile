FROM alpine
ENV A=x–y B=zé
