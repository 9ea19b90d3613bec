# escape=`
FROM mcr.microsoft.com/windows/nanoserver
WORKDIR C:\app
COPY .\bin\ C:\app\bin\
RUN C:\app\setup.exe /quiet `
    /norestart
