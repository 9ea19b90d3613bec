FROM alpine
ADD --chown=1:1 --chmod=755 --link --keep-git-dir=true --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d --exclude=x https://example.com/a.tar.gz /a/
