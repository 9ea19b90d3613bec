# escape=`
FROM mcr.microsoft.com/windows/servercore
RUN dir c:\ `
    /s
COPY testfile.txt c:\
RUN echo `
  done
