#!/usr/bin/env bash
# The main job, end to end, on this machine and nothing else:
#   1. install the dependencies (scripts/install-deps.sh),
#   2. start a local docker-registry on 127.0.0.1 (free port, temporary storage),
#   3. make a busybox base image offline (Debian's busybox-static) and push it there,
#   4. build examples/app (RUN, COPY, ENV, a second stage) with `executor` and push it,
#   5. print the digest and `skopeo inspect`, unpack the image with umoci and check it.
# Exits non-zero on any failure. The registry is stopped by PID and the files removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

say() { printf '\n==> %s\n' "$*"; }
fail() { printf 'demo: FAILED: %s\n' "$*" >&2; exit 1; }

say "Installing dependencies"
bash scripts/install-deps.sh

WORK=$(mktemp -d /tmp/brickyard-demo.XXXXXX)
REG_PID=""
cleanup() {
  if [[ -n "$REG_PID" ]] && kill -0 "$REG_PID" 2>/dev/null; then
    kill "$REG_PID" 2>/dev/null || true
    wait "$REG_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
REGISTRY="127.0.0.1:${PORT}"
say "Starting docker-registry on ${REGISTRY} (storage ${WORK}/registry)"
mkdir -p "$WORK/registry"
cat > "$WORK/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: ${WORK}/registry
http:
  addr: ${REGISTRY}
EOF
docker-registry serve "$WORK/registry.yml" > "$WORK/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 1 100); do
  if python3 -c "import sys, urllib.request; urllib.request.urlopen('http://${REGISTRY}/v2/', timeout=1)" 2>/dev/null; then
    break
  fi
  kill -0 "$REG_PID" 2>/dev/null || { cat "$WORK/registry.log" >&2; fail "registry did not start"; }
  sleep 0.1
done

say "Making the busybox base image offline and pushing it"
BASE=$(python3 -c "
import sys
sys.path.insert(0, '${ROOT}')
from tests.support.images import push_busybox_image
print(push_busybox_image('${REGISTRY}', 'base/busybox', 'latest'))
")
echo "base image: ${BASE}"

if command -v executor >/dev/null 2>&1; then
  EXECUTOR=(executor)
else
  EXECUTOR=(python3 -c 'import sys; from engine.cli import executor_main; sys.exit(executor_main())')
fi

IMAGE="${REGISTRY}/demo/app:1.0.0"
say "Building examples/app with executor and pushing ${IMAGE}"
set -x
"${EXECUTOR[@]}" \
  --context "dir://${ROOT}/examples/app" \
  --dockerfile "${ROOT}/examples/app/Dockerfile" \
  --build-arg "BASE=${BASE}" \
  --destination "${IMAGE}" \
  --destination "${REGISTRY}/demo/app:latest" \
  --insecure --insecure-pull \
  --digest-file "$WORK/digest" \
  --report-file "$WORK/report.json" \
  --log-format text
set +x

DIGEST=$(cat "$WORK/digest")
say "Pushed ${IMAGE}"
echo "digest: ${DIGEST}"

say "skopeo inspect docker://${IMAGE}"
skopeo inspect --tls-verify=false "docker://${IMAGE}" | tee "$WORK/inspect.json"
INSPECTED=$(python3 -c "import json; print(json.load(open('$WORK/inspect.json'))['Digest'])")
[[ "$INSPECTED" == "$DIGEST" ]] || fail "registry digest $INSPECTED != built digest $DIGEST"

say "Unpacking the pushed image with umoci and checking it"
skopeo copy --quiet --src-tls-verify=false "docker://${IMAGE}" "oci:${WORK}/oci:app"
umoci unpack --image "${WORK}/oci:app" "${WORK}/bundle" >/dev/null
ROOTFS="${WORK}/bundle/rootfs"
check() { # check DESCRIPTION COMMAND...
  if "${@:2}"; then echo "ok   $1"; else fail "$1"; fi
}
check "/app/VERSION is 1.0.0" grep -qx "1.0.0" "$ROOTFS/app/VERSION"
check "/app/bin/greet is executable" test -x "$ROOTFS/app/bin/greet"
check "build stage leftovers are not in the image" test ! -e "$ROOTFS/src"
check "RUN output baked in: /app/first-run.txt" \
  grep -qx "hello from brickyard (version 1.0.0)" "$ROOTFS/app/first-run.txt"
check "/etc/app.conf owned by app (1000:1000) mode 640" \
  test "$(stat -c '%u:%g %a' "$ROOTFS/etc/app.conf")" = "1000:1000 640"
check "/usr/bin/greet is a symlink to /app/bin/greet" \
  test "$(readlink "$ROOTFS/usr/bin/greet")" = "/app/bin/greet"
python3 - "$WORK/bundle/config.json" <<'EOF' || fail "runtime config"
import json, sys
proc = json.load(open(sys.argv[1]))["process"]
assert "GREETING=hello from brickyard" in proc["env"], proc["env"]
assert proc["args"] == ["/app/bin/greet"], proc["args"]
assert proc["cwd"] == "/app", proc["cwd"]
assert proc["user"]["uid"] == 1000, proc["user"]
print("ok   runtime config: env GREETING, cmd /app/bin/greet, cwd /app, uid 1000")
EOF

say "Demo succeeded: ${IMAGE}@${DIGEST}"
