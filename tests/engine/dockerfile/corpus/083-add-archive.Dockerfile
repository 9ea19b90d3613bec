FROM alpine
ADD rootfs.tar.xz /
ADD --unpack=false https://x/y.tgz /z/
