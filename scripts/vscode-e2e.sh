#!/usr/bin/env bash
# Real-VS-Code tests (ENVIRONMENT.md): installs Node 24 + code-server (cached, scripts/vscode-setup.sh),
# builds the extension and the test bundles, starts code-server on 127.0.0.1 with a fresh profile and a
# scratch workspace holding copies of the fixtures, then runs
#   A) mocha integration tests inside the extension host (test/vscode, via test/e2e/ext-tests.mjs)
#   B) the GUI test with playwright-core + /usr/bin/chromium (test/e2e/report.e2e.mjs), screenshots in $OUT.
# usage: scripts/vscode-e2e.sh [integration|gui|all]   (default all). Exit 0 iff every part passed.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WHAT=${1:-all}
OUT=${MD_E2E_OUT:-$ROOT/dist/vscode-test-output}   # dist/ is git-ignored
T() { local s; s=$(date +%s); "$@"; local rc=$?; echo "TIMING $(( $(date +%s) - s ))s rc=$rc: $*" >&2; return $rc; }

eval "$(bash "$ROOT/scripts/vscode-setup.sh" | grep -E '^(NODE24_DIR|CS)=')" || { echo "setup failed"; exit 1; }
cd "$ROOT"
T node scripts/build.mjs --tests || exit 1

RUN=$(mktemp -d "${TMPDIR:-/tmp}/md-vscode-XXXXXX")
mkdir -p "$RUN/ud/User" "$RUN/ext" "$RUN/workspace/models" "$RUN/tmp" "$RUN/xdg/config" "$RUN/xdg/data" "$RUN/xdg/cache" "$OUT"
for m in tanh_tiny_init relu_he_deep dead_relu tanh_xavier; do cp "test/fixtures/models/$m.onnx" "$RUN/workspace/models/"; done
cat > "$RUN/ud/User/settings.json" <<'JSON'
{
  "workbench.startupEditor": "none",
  "workbench.welcomePage.walkthroughs.openOnInstall": false,
  "workbench.tips.enabled": false,
  "workbench.enableExperiments": false,
  "security.workspace.trust.enabled": false,
  "telemetry.telemetryLevel": "off",
  "update.mode": "none",
  "extensions.autoCheckUpdates": false,
  "extensions.autoUpdate": false,
  "extensions.ignoreRecommendations": true,
  "chat.disableAIFeatures": true,
  "git.enabled": false,
  "git.autoRepositoryDetection": false,
  "github.gitAuthentication": false,
  "npm.fetchOnlinePackageInfo": false,
  "typescript.disableAutomaticTypeAcquisition": true,
  "workbench.colorTheme": "Default Dark Modern",
  "workbench.secondarySideBar.defaultVisibility": "hidden"
}
JSON
PORT=${MD_E2E_PORT:-$(( 18100 + RANDOM % 800 ))}
# code-server and its extension host: Node 24 first on PATH, all state (IPC sockets, XDG dirs) under $RUN
( export PATH="$NODE24_DIR/bin:$PATH" npm_config_nodedir="$NODE24_DIR" TMPDIR="$RUN/tmp" \
    XDG_CONFIG_HOME="$RUN/xdg/config" XDG_DATA_HOME="$RUN/xdg/data" XDG_CACHE_HOME="$RUN/xdg/cache"
  exec setsid "$CS" --bind-addr "127.0.0.1:$PORT" --auth none --disable-telemetry --disable-update-check \
    --disable-workspace-trust --disable-getting-started-override --ignore-last-opened \
    --vscode-option enable-smoke-test-driver \
    --user-data-dir "$RUN/ud" --extensions-dir "$RUN/ext" "$RUN/workspace" >"$RUN/cs.log" 2>&1 ) &
CS_PID=$!
stop() { kill -TERM -- "-$CS_PID" 2>/dev/null; for _ in $(seq 1 20); do kill -0 -- "-$CS_PID" 2>/dev/null || break; sleep 0.25; done; kill -KILL -- "-$CS_PID" 2>/dev/null; }
trap stop EXIT
up=0
for _ in $(seq 1 120); do
  if curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; then up=1; break; fi
  kill -0 "$CS_PID" 2>/dev/null || break
  sleep 0.5
done
[ $up = 1 ] || { echo "code-server did not start"; tail -30 "$RUN/cs.log"; exit 1; }
echo "code-server up on 127.0.0.1:$PORT (pgid $CS_PID), run dir $RUN"

fail=0
if [ "$WHAT" = all ] || [ "$WHAT" = integration ]; then
  echo "== A) integration tests (mocha in the extension host)"
  SHOT="$OUT/integration.png" T node test/e2e/ext-tests.mjs "http://127.0.0.1:$PORT/" "$ROOT" "$ROOT/dist/test/index.js" "$RUN/workspace" \
    2>&1 | tee "$OUT/integration.log"
  [ "${PIPESTATUS[0]}" = 0 ] || fail=1
fi
if [ "$WHAT" = all ] || [ "$WHAT" = gui ]; then
  echo "== B) GUI test (playwright-core + chromium)"
  T node test/e2e/report.e2e.mjs "http://127.0.0.1:$PORT/" "$ROOT" "$RUN/workspace" "$OUT" 2>&1 | tee "$OUT/gui.log"
  [ "${PIPESTATUS[0]}" = 0 ] || fail=1
fi
echo "extension host log: $(ls -d "$RUN"/ud/logs/*/ 2>/dev/null | head -1)"
exit $fail
