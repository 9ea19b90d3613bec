#!/bin/sh
# "Compiles" the demo program into $1: a shell script plus a VERSION file.
set -eu
out="$1"
mkdir -p "$out/bin"
cat VERSION > "$out/VERSION"
cat greet.sh > "$out/bin/greet"
chmod 755 "$out/bin/greet"
echo "built at build time" > "$out/.build-log"
