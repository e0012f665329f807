// `npm run test:electron [-- integration|untrusted|all] [-- --version 1.100.0]`
// The same mocha suites as scripts/vscode-e2e.sh (dist/test/index.js, dist/test/untrusted/index.js), run
// in a desktop VS Code that @vscode/test-electron downloads into .vscode-test/ on the first run: for a
// machine with internet access (and a display, or xvfb-run on Linux). The project's own machines have
// no such access; there scripts/vscode-e2e.sh runs the suites in code-server instead.
import { runTests } from "@vscode/test-electron";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const args = process.argv.slice(2);
const vIndex = args.indexOf("--version");
const version = vIndex >= 0 ? args.splice(vIndex, 2)[1] : "stable";
const suite = args[0] ?? "all";

execFileSync(process.execPath, ["scripts/build.mjs", "--tests"], { cwd: root, stdio: "inherit" });

/** One suite in a fresh profile and workspace; resolves to true when every test passed. */
async function run(name, testsPath, trusted) {
  const dir = mkdtempSync(path.join(os.tmpdir(), `md-electron-${name}-`));
  const workspace = path.join(dir, "workspace");
  execFileSync(process.execPath, ["scripts/vscode-workspace.mjs", workspace, ...(trusted ? ["--resnet18"] : [])], { cwd: root, stdio: "inherit" });
  const userDir = path.join(dir, "user-data");
  mkdirSync(path.join(userDir, "User"), { recursive: true });
  writeFileSync(path.join(userDir, "User", "settings.json"), JSON.stringify({
    "workbench.startupEditor": "none", "telemetry.telemetryLevel": "off", "update.mode": "none", "extensions.autoCheckUpdates": false,
    "security.workspace.trust.enabled": !trusted, "security.workspace.trust.startupPrompt": "never", "security.workspace.trust.banner": "never",
  }, null, 2));
  if (name === "untrusted") {
    mkdirSync(path.join(workspace, ".vscode"), { recursive: true });
    writeFileSync(path.join(workspace, ".vscode", "settings.json"), JSON.stringify({ "modelDoctor.probe.dataFiles": { "saved/tiny.onnx": "data/tanh_tiny_init.probe.npy" } }));
  }
  try {
    await runTests({
      version,
      extensionDevelopmentPath: root,
      extensionTestsPath: path.join(root, "dist", "test", testsPath),
      launchArgs: [workspace, "--user-data-dir", userDir, "--disable-extensions", ...(trusted ? ["--disable-workspace-trust"] : [])],
    });
    return true;
  } catch (e) {
    console.error(`${name}: ${e instanceof Error ? e.message : String(e)}`);
    return false;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

let ok = true;
if (suite === "all" || suite === "integration") ok = (await run("integration", "index.js", true)) && ok;
if (suite === "all" || suite === "untrusted") ok = (await run("untrusted", "untrusted/index.js", false)) && ok;
process.exit(ok ? 0 : 1);
