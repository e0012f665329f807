#!/usr/bin/env bash
# Real-VS-Code tests (ENVIRONMENT.md): installs Node 24 + code-server (cached, scripts/vscode-setup.sh),
# builds the extension and the test bundles, and runs, each against a fresh code-server on 127.0.0.1 with a
# fresh profile and a scratch workspace (copies of the fixtures, their probe data, a generated ResNet-18):
#   integration  mocha inside the extension host (test/vscode, via test/e2e/ext-tests.mjs)
#   gui          playwright-core + /usr/bin/chromium driving the workbench with the .vsix installed
#                (test/e2e/report.e2e.mjs); screenshots in $OUT
#   untrusted    mocha in a workspace left untrusted (workspace trust on, no prompt): static analysis only
#   vsix         `npm run package`, `code-server --install-extension` of the .vsix, mocha checks that the installed
#                package activates and runs (display language zh-cn)
#   standalone   the exported HTML report in Chromium (no code-server): charts, NaN, static-only, gradients, keyboard
# usage: scripts/vscode-e2e.sh [PART...|all]   (default all).
#        scripts/vscode-e2e.sh serve   starts that code-server with the extension and a test workspace and keeps it running.
# Each part's runner ends with "N passed, N failed"; this script prints them as "PART <name> <passed> <failed>"
# (a part that died without a count is 0 passed, 1 failed) and exits 0 iff every part passed.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PARTS=("$@"); [ ${#PARTS[@]} = 0 ] && PARTS=(all)
want() { local p; for p in "${PARTS[@]}"; do [ "$p" = all ] || [ "$p" = "$1" ] && return 0; done; return 1; }
OUT=${MD_E2E_OUT:-$ROOT/dist/vscode-test-output}   # dist/ is git-ignored
T() { local s; s=$(date +%s); "$@"; local rc=$?; echo "TIMING $(( $(date +%s) - s ))s rc=$rc: $*" >&2; return $rc; }
mkdir -p "$OUT"

eval "$(bash "$ROOT/scripts/vscode-setup.sh" | grep -E '^(NODE24_DIR|CS)=')" || { echo "setup failed"; echo "PART setup 0 1"; exit 1; }
cd "$ROOT"
T node scripts/build.mjs --tests || { echo "PART build 0 1"; exit 1; }

# The ResNet-18 of the event-loop and cancel tests (scripts/bench-models.ts), generated once per checkout.
T node scripts/vscode-workspace.mjs "$ROOT/dist/vscode-test-models/warm-up" --resnet18 || { echo "PART workspace 0 1"; exit 1; }
rm -rf "$ROOT/dist/vscode-test-models/warm-up"

RUNS=()
CS_PID=""
# Run dirs (profiles, workspaces with a 47 MB model) are removed when every part passed, kept otherwise
# (or always with MD_E2E_KEEP=1) for their extension-host logs.
cleanup() {
  stop_cs
  if [ "${fail:-1}" = 0 ] && [ "${MD_E2E_KEEP:-0}" != 1 ]; then rm -rf "${RUNS[@]}"; elif [ ${#RUNS[@]} -gt 0 ]; then echo "run dirs kept: ${RUNS[*]}"; fi
}
trap cleanup EXIT

# new_run NAME [--resnet18]: a fresh run dir ($RUN) with profile, extensions dir, XDG dirs and a workspace
# of fixtures (scripts/vscode-workspace.mjs).
new_run() {
  RUN=$(mktemp -d "${TMPDIR:-/tmp}/md-vscode-$1-XXXXXX")
  RUNS+=("$RUN")
  mkdir -p "$RUN/ud/User" "$RUN/ext" "$RUN/tmp" "$RUN/xdg/config" "$RUN/xdg/data" "$RUN/xdg/cache"
  node scripts/vscode-workspace.mjs "$RUN/workspace" "${@:2}"
  cat > "$RUN/ud/User/settings.json" <<JSON
{
  "workbench.startupEditor": "none",
  "workbench.welcomePage.walkthroughs.openOnInstall": false,
  "workbench.tips.enabled": false,
  "workbench.enableExperiments": false,
  "security.workspace.trust.enabled": ${TRUST_ENABLED:-false},
  "security.workspace.trust.startupPrompt": "never",
  "security.workspace.trust.banner": "never",
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
}

# start_cs [code-server args...]: starts code-server for $RUN on a free port ($PORT), its own process group ($CS_PID).
start_cs() {
  PORT=${MD_E2E_PORT:-$(( 18100 + RANDOM % 800 ))}
  # EXTENSIONS_GALLERY: the marketplace on a closed loopback port, so code-server asks no outside host.
  ( export PATH="$NODE24_DIR/bin:$PATH" npm_config_nodedir="$NODE24_DIR" TMPDIR="$RUN/tmp" \
      XDG_CONFIG_HOME="$RUN/xdg/config" XDG_DATA_HOME="$RUN/xdg/data" XDG_CACHE_HOME="$RUN/xdg/cache" \
      EXTENSIONS_GALLERY='{"serviceUrl":"http://127.0.0.1:9/gallery","itemUrl":"http://127.0.0.1:9/items"}'
    exec setsid "$CS" --bind-addr "127.0.0.1:$PORT" --auth none --disable-telemetry --disable-update-check \
      --disable-getting-started-override --ignore-last-opened \
      --user-data-dir "$RUN/ud" --extensions-dir "$RUN/ext" "$@" "$RUN/workspace" >"$RUN/cs.log" 2>&1 ) &
  CS_PID=$!
  local _
  for _ in $(seq 1 120); do
    if curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; then
      echo "code-server up on 127.0.0.1:$PORT (pgid $CS_PID), run dir $RUN"; return 0
    fi
    kill -0 "$CS_PID" 2>/dev/null || break
    sleep 0.5
  done
  echo "code-server did not start"; tail -30 "$RUN/cs.log"; return 1
}
stop_cs() {
  [ -n "$CS_PID" ] || return 0
  kill -TERM -- "-$CS_PID" 2>/dev/null
  local _; for _ in $(seq 1 20); do kill -0 -- "-$CS_PID" 2>/dev/null || break; sleep 0.25; done
  kill -KILL -- "-$CS_PID" 2>/dev/null
  echo "extension host log: $(ls -d "$RUN"/ud/logs/*/ 2>/dev/null | head -1)"
  CS_PID=""
}

# package_vsix: `npm run package` once per run of this script ($VSIX).
VSIX=""
package_vsix() {
  [ -n "$VSIX" ] && return 0
  T node scripts/package.mjs > "$OUT/package.log" 2>&1; tail -2 "$OUT/package.log"
  VSIX=$(grep -E '^VSIX ' "$OUT/package.log" | tail -1 | awk '{print $2}')
  [ -n "$VSIX" ] && [ -s "$VSIX" ] || { echo "packaging failed"; cat "$OUT/package.log"; VSIX=""; return 1; }
}
# install_vsix [zh-cn]: installs the .vsix into $RUN/ext with `code-server --install-extension`, as a user would;
# with zh-cn also a stub language pack, so that --locale zh-cn takes effect.
install_vsix() {
  package_vsix || return 1
  local extra=()
  if [ "${1:-}" = zh-cn ]; then
    # VS Code shows a display language only when a language pack for it is installed: a stub pack that
    # registers zh-cn (with no translations of VS Code itself) makes vscode.env.language "zh-cn", so the
    # extension's l10n/bundle.l10n.zh-cn.json is used.
    mkdir -p "$RUN/langpack/translations"
    cat > "$RUN/langpack/package.json" <<'JSON'
{ "name": "md-test-zh-cn-langpack", "publisher": "test", "version": "0.0.1", "license": "MIT",
  "description": "Test stub: registers the zh-cn display language without translating VS Code.",
  "engines": { "vscode": "^1.100.0" }, "categories": ["Language Packs"],
  "contributes": { "localizations": [ { "languageId": "zh-cn", "languageName": "Chinese Simplified", "localizedLanguageName": "中文(简体)",
    "translations": [ { "id": "vscode", "path": "./translations/main.i18n.json" } ] } ] } }
JSON
    echo '{ "version": "1.0.0", "contents": {} }' > "$RUN/langpack/translations/main.i18n.json"
    echo "test stub" > "$RUN/langpack/README.md"
    (cd "$RUN/langpack" && node "$ROOT/node_modules/@vscode/vsce/vsce" package --skip-license --allow-missing-repository -o "$RUN/langpack.vsix" >/dev/null) \
      || { echo "language pack stub: packaging failed"; return 1; }
    extra=(--install-extension "$RUN/langpack.vsix")
  fi
  ( export PATH="$NODE24_DIR/bin:$PATH" XDG_CONFIG_HOME="$RUN/xdg/config" XDG_DATA_HOME="$RUN/xdg/data" TMPDIR="$RUN/tmp"
    T "$CS" --user-data-dir "$RUN/ud" --extensions-dir "$RUN/ext" --install-extension "$ROOT/$VSIX" "${extra[@]}" ) 2>&1 | tail -3
  ls "$RUN/ext" | grep -q '^onnx-model-doctor\.onnx-model-doctor-' || { echo "the .vsix did not install"; return 1; }
  if [ "${1:-}" = zh-cn ]; then
    # The server picks a language pack from languagepacks.json in the user-data dir, which it writes only when
    # the workbench asks for the installed languages; write it for the stub (the hash only names a cache folder).
    cat > "$RUN/ud/languagepacks.json" <<JSON
{ "zh-cn": { "hash": "mdteststub1", "label": "中文(简体)",
  "extensions": [ { "extensionIdentifier": { "id": "test.md-test-zh-cn-langpack" }, "version": "0.0.1" } ],
  "translations": { "vscode": "$(ls -d "$RUN"/ext/test.md-test-zh-cn-langpack-*)/translations/main.i18n.json" } } }
JSON
  fi
}

fail=0
# run_part NAME CMD...: runs a part's runner, tags its "N passed, N failed" line, records PART NAME P F.
run_part() {
  local name=$1; shift
  echo "== $name"
  local log="$OUT/$name.log"
  T "$@" 2>&1 | sed -u -E "s/^([0-9]+ passed, [0-9]+ failed)/[$name] \1/" | tee "$log"
  local rc=${PIPESTATUS[0]}
  local line; line=$(grep -E "^\[$name\] [0-9]+ passed, [0-9]+ failed" "$log" | tail -1)
  local p=0 f=1
  if [ -n "$line" ]; then p=$(echo "$line" | awk '{print $2}'); f=$(echo "$line" | awk '{print $4}'); fi
  [ "$rc" -ne 0 ] && [ "$f" = 0 ] && f=1
  [ "$rc" -ne 0 ] && fail=1
  RESULTS+=("PART $name $p $f")
}
RESULTS=()

# The extension tests need the smoke-test driver: it makes a built VS Code honour the extensionDevelopmentPath
# and extensionTestsPath of the URL payload, and reports the exit code (codeAutomationExit).
SMOKE=(--vscode-option enable-smoke-test-driver)
if want integration; then
  new_run main --resnet18
  if start_cs --disable-workspace-trust "${SMOKE[@]}"; then
    SHOT="$OUT/integration.png" run_part integration node test/e2e/ext-tests.mjs "http://127.0.0.1:$PORT/" "$ROOT" "$ROOT/dist/test/index.js" "$RUN/workspace"
  else RESULTS+=("PART integration 0 1"); fail=1; fi
  stop_cs
fi

# The GUI test drives the extension as a user gets it: the .vsix installed into code-server (a development
# extension would need the smoke-test driver, which hides notification toasts, and the test clicks one).
if want gui; then
  new_run gui --resnet18
  if install_vsix && start_cs --disable-workspace-trust; then
    MD_CS_PGID=$CS_PID run_part gui node test/e2e/report.e2e.mjs "http://127.0.0.1:$PORT/" - "$RUN/workspace" "$OUT"
  else RESULTS+=("PART gui 0 1"); fail=1; fi
  stop_cs
fi

if want untrusted; then
  TRUST_ENABLED=true new_run untrusted
  mkdir -p "$RUN/workspace/.vscode"
  echo '{ "modelDoctor.probe.dataFiles": { "saved/tiny.onnx": "data/tanh_tiny_init.probe.npy" } }' > "$RUN/workspace/.vscode/settings.json"
  if start_cs "${SMOKE[@]}"; then
    SHOT="$OUT/untrusted.png" run_part untrusted node test/e2e/ext-tests.mjs "http://127.0.0.1:$PORT/" "$ROOT" "$ROOT/dist/test/untrusted/index.js" "$RUN/workspace"
  else RESULTS+=("PART untrusted 0 1"); fail=1; fi
  stop_cs
fi

if want vsix; then
  new_run vsix
  # the stub under development only carries the test (an extensionTestsPath needs a development extension)
  mkdir -p "$RUN/stub"
  echo '{ "name": "md-vsix-test-stub", "publisher": "test", "version": "0.0.0", "engines": { "vscode": "*" } }' > "$RUN/stub/package.json"
  export MD_VSIX_EXTENSIONS_DIR="$RUN/ext" MD_EXPECT_LOCALE=zh-cn
  if install_vsix zh-cn && start_cs --disable-workspace-trust --locale zh-cn "${SMOKE[@]}"; then
    SHOT="$OUT/vsix.png" run_part vsix node test/e2e/ext-tests.mjs "http://127.0.0.1:$PORT/" "$RUN/stub" "$ROOT/dist/test/vsix/index.js" "$RUN/workspace"
  else RESULTS+=("PART vsix 0 1"); fail=1; fi
  stop_cs
fi

# serve (never part of "all"): a code-server like the GUI test's, kept running for a look by hand or a debugger.
if [ "${PARTS[0]}" = serve ]; then
  new_run serve --resnet18
  start_cs --disable-workspace-trust || exit 1
  echo "open http://127.0.0.1:$PORT/?folder=$RUN/workspace&payload=$(printf '[["extensionDevelopmentPath","vscode-remote://127.0.0.1:%s%s"]]' "$PORT" "$ROOT")"
  echo "MD_CS_PGID=$CS_PID WORKSPACE=$RUN/workspace; stop with Ctrl-C"
  while kill -0 "$CS_PID" 2>/dev/null; do sleep 2; done
  exit 0
fi

if want standalone; then
  run_part standalone node --import tsx test/e2e/standalone.e2e.mjs "$OUT"
fi

printf '%s\n' "${RESULTS[@]}"
exit $fail
