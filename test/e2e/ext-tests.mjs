// usage: node test/e2e/ext-tests.mjs BASE_URL EXT_DEV_PATH EXT_TESTS_PATH WORKSPACE
// Runs the mocha integration tests inside code-server's extension host, driven by headless Chromium
// (the mechanism @vscode/test-web uses): ?payload=[["extensionDevelopmentPath",URI],["extensionTestsPath",URI]],
// the exit code comes back through window.codeAutomationExit. Needs code-server started with
// --vscode-option enable-smoke-test-driver. Adapted from shared/reference/vscode-e2e/e2e/ext-tests.mjs.
import { chromium } from "playwright-core";
import path from "node:path";
import util from "node:util";

const [base, devPath, testsPath, workspace] = process.argv.slice(2);
const authority = new URL(base).host;
const remote = (p) => `vscode-remote://${authority}${path.resolve(p)}`;
const url = new URL(base);
url.searchParams.set("folder", path.resolve(workspace));
url.searchParams.set("payload", JSON.stringify([["extensionDevelopmentPath", remote(devPath)], ["extensionTestsPath", remote(testsPath)]]));
const t0 = Date.now();
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = await (await browser.newContext()).newPage();
let resolveExit;
const exited = new Promise((r) => (resolveExit = r));
await page.exposeFunction("codeAutomationLog", (_type, args) => console.log(util.format(...(args ?? [])).replace(/%c/g, "")));
await page.exposeFunction("codeAutomationExit", (code) => resolveExit(code));
page.on("console", (m) => { if (process.env.VERBOSE) console.log(`[browser ${m.type()}] ${m.text()}`); });
await page.goto(url.toString(), { waitUntil: "domcontentloaded", timeout: 120000 });
const timeoutMs = Number(process.env.EXT_TEST_TIMEOUT_MS ?? 300000);
const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r("timeout"), timeoutMs))]);
console.log(`extension tests finished: exit code ${code} after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
if (process.env.SHOT) await page.screenshot({ path: process.env.SHOT }).catch(() => {});
await browser.close();
process.exit(code === 0 ? 0 : 1);
