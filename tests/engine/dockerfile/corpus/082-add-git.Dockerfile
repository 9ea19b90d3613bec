FROM alpine
ADD --keep-git-dir git@github.com:moby/buildkit.git#v0.10.1 /buildkit
ADD https://github.com/moby/buildkit.git#v0.10.1:docs /docs
