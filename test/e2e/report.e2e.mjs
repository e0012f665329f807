// usage: node test/e2e/report.e2e.mjs BASE_URL EXT_DEV_PATH WORKSPACE OUT_DIR
// GUI test in a real VS Code (code-server) driven by playwright-core + Debian Chromium: runs
// commands from the F1 palette, opens the report editor for two models, checks the chart canvases
// and the findings inside the webview, clicks a finding, opens the Findings tree, moves through the
// findings with the keyboard, runs "Analyze with Probe Data…" through the open dialog, cancels an
// analysis from its progress notification, kills the worker with SIGKILL (a clear error, then the next
// run works), switches to a light theme (the charts re-render), shows a model whose node and tensor names hold
// HTML/JavaScript as inert text (scripts/make_hostile_model.py), saves screenshots.
// Env: MD_CS_PGID = code-server's process group (to find the analysis workers it forked).
import { chromium } from "playwright-core";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

const [base, devPath, workspace, out = "test-output/e2e"] = process.argv.slice(2);
fs.mkdirSync(out, { recursive: true });
fs.rmSync(path.join(out, "error.png"), { force: true });
const url = new URL(base);
url.searchParams.set("folder", path.resolve(workspace));
// EXT_DEV_PATH "-": the extension is installed (the .vsix); otherwise load it from that folder (needs the smoke-test driver)
if (devPath !== "-") url.searchParams.set("payload", JSON.stringify([["extensionDevelopmentPath", `vscode-remote://${url.host}${path.resolve(devPath)}`]]));
// A model with hostile names: every node and tensor name starts with <img onerror> or <script> markup.
const IMG = "<img src=x onerror=window.__pwned=1>", SCRIPT = "<script>window.__pwned=1</script>";
// Committed fixture (made by scripts/make_hostile_model.py from dead_relu.onnx), so CI needs no Python.
fs.copyFileSync(path.join(path.dirname(new URL(import.meta.url).pathname), "..", "fixtures", "models", "hostile_names.onnx"), path.join(workspace, "models", "hostile_names.onnx"));
const t0 = Date.now();
const lap = (m) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${m}`);
let passed = 0, failed = 0;
const check = (cond, msg) => { console.log(`${cond ? "PASS" : "FAIL"}: ${msg}`); if (cond) passed++; else failed++; };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = await (await browser.newContext({ viewport: { width: 1600, height: 1000 } })).newPage();
const external = new Set();
page.on("request", (r) => { const u = new URL(r.url()); if (!["127.0.0.1", "localhost"].includes(u.hostname) && /^https?:/.test(u.protocol)) external.add(r.url()); });
page.on("pageerror", (e) => console.log("pageerror:", e.message));

async function palette(text, rowText, timeoutMs = 60000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await page.keyboard.press("F1");
    const input = page.locator(".quick-input-widget input");
    await input.waitFor();
    await input.fill(text);
    const row = page.locator(".quick-input-list .monaco-list-row", { hasText: rowText }).first();
    try { await row.waitFor({ timeout: 2500 }); await row.click(); return; }
    catch (e) { await page.keyboard.press("Escape"); if (Date.now() > deadline) throw e; await page.waitForTimeout(500); }
  }
}
/** Analysis workers of this test's code-server (its process group, MD_CS_PGID), newest last. */
function workers() {
  const pgid = process.env.MD_CS_PGID;
  if (!pgid) return [];
  return execFileSync("ps", ["-eo", "pid=,pgid=,args="], { encoding: "utf8" }).split("\n")
    .map((l) => l.trim().split(/\s+/)).filter((f) => f[1] === pgid && f.slice(2).join(" ").includes("dist/worker.js")).map((f) => Number(f[0]));
}
async function waitForWorker(timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const w = workers();
    if (w.length) return w[w.length - 1];
    if (Date.now() > deadline) throw new Error("no analysis worker started");
    await page.waitForTimeout(100);
  }
}
async function waitForNoWorker(pid, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!workers().includes(pid)) return true;
    await page.waitForTimeout(100);
  }
  return false;
}
/** The report webview of the active editor: iframe.webview.ready >> #active-frame. */
const webview = () => page.locator("iframe.webview.ready:visible").last().contentFrame().locator("#active-frame").contentFrame();

async function openReport(file) {
  await palette(file, file); // F1 without ">" = Quick Open: *.onnx opens in the report custom editor
  const wv = webview();
  await wv.locator("#findings").waitFor({ timeout: 60000 });
  return wv;
}

try {
  await page.goto(url.toString(), { waitUntil: "domcontentloaded", timeout: 120000 });
  await page.locator(".monaco-workbench").waitFor({ timeout: 90000 });
  lap("workbench visible");

  // 1. tiny-init tanh: vanishing activations
  let wv = await openReport("tanh_tiny_init.onnx");
  lap("report for tanh_tiny_init open");
  const renders = async () => Number(await wv.locator("body").getAttribute("data-renders"));
  const before = await renders();
  await palette(">Model Doctor: Analyze Model", "Analyze Model"); // the command on the active report
  for (let i = 0; i < 600 && (await renders()) <= before; i++) await page.waitForTimeout(100);
  await wv.locator("#chart-activation").waitFor({ timeout: 60000 });
  const canvases = await wv.locator("canvas").count();
  const hist = await wv.locator("canvas.hist").count();
  check(hist === 10, `tiny-init: ${hist} histogram canvases (10 layers), ${canvases} canvases in all`);
  for (const id of ["chart-activation", "chart-activation-std", "chart-weights", "chart-dead"]) check(await wv.locator(`#${id}`).count() === 1, `canvas #${id}`);
  const findingsText = await wv.locator("#findings").innerText();
  check(/activation\.vanishing/.test(findingsText) && /init\.scale-small/.test(findingsText), "findings list shows activation.vanishing and init.scale-small");
  check(/Fix:/.test(findingsText), "findings show a fix");
  // The report editor's analysis runs the backward graph too: its gradient chart, note and finding.
  check(await wv.locator("#chart-gradient").count() === 1, "canvas #chart-gradient from the real gradient probe");
  check(/Loss: random .*gradients reach 10 of 10 layers/.test(await wv.locator("#gradient-note").innerText()), "the gradient chart names its loss and its coverage");
  check(/gradient\.vanishing/.test(findingsText), "findings list shows gradient.vanishing");
  await page.screenshot({ path: path.join(out, "tanh_tiny_init-report.png") });
  await wv.locator("#histograms").scrollIntoViewIfNeeded();
  await page.waitForTimeout(300);
  await page.screenshot({ path: path.join(out, "tanh_tiny_init-histograms.png") });
  // click the vanishing finding: its layer is highlighted in the table and the histogram grid
  await wv.locator(".finding", { hasText: "activation.vanishing" }).first().click();
  const selected = await wv.locator("tr.selected").count();
  check(selected === 1 && (await wv.locator("tr.selected").innerText()).includes("layers.16"), "clicking a finding highlights its layer (layers.16)");
  check(await wv.locator(".hist-cell.selected").count() === 1, "…and its histogram");
  await page.screenshot({ path: path.join(out, "tanh_tiny_init-selected.png") });
  lap("tiny-init checks done");

  // 2. healthy He-initialised ReLU net
  wv = await openReport("relu_he_deep.onnx");
  await wv.locator("canvas.hist").first().waitFor({ timeout: 60000 });
  check(await wv.locator("canvas.hist").count() === 10, "relu_he_deep: 10 histogram canvases");
  check(/No findings/.test(await wv.locator("#findings").innerText()), "relu_he_deep: no findings");
  await page.screenshot({ path: path.join(out, "relu_he_deep-report.png") });
  await wv.locator("#histograms").scrollIntoViewIfNeeded();
  await page.waitForTimeout(300);
  await page.screenshot({ path: path.join(out, "relu_he_deep-histograms.png") });

  // 2b. hostile names: the markup shows as text, nothing is injected, no script runs in the webview
  wv = await openReport("hostile_names.onnx");
  await wv.locator(".finding", { hasText: "activation.dead" }).first().waitFor({ timeout: 60000 });
  await wv.locator("#layers, table").first().waitFor({ timeout: 30000 }).catch(() => {});
  await page.waitForTimeout(1000); // time for an injected onerror handler to fire
  const hostileFindings = await wv.locator("#findings").innerText();
  const hostileBody = await wv.locator("body").innerText();
  check(hostileFindings.includes(IMG) && hostileFindings.includes(SCRIPT), "hostile names: the findings show <img onerror> and <script> names literally");
  check(hostileBody.split(IMG).length > 3, `hostile names: the layer names show literally (${hostileBody.split(IMG).length - 1} times)`);
  const injected = await wv.locator("body").evaluate(() => ({
    pwned: typeof window.__pwned,
    imgX: [...document.querySelectorAll("img")].filter((i) => i.getAttribute("src") === "x").length,
    onerror: document.querySelectorAll("[onerror]").length,
    scripts: [...document.querySelectorAll("script")].filter((sc) => sc.textContent.includes("__pwned")).length,
  }));
  check(injected.imgX === 0 && injected.onerror === 0 && injected.scripts === 0, `hostile names: no element injected (${JSON.stringify(injected)})`);
  check(injected.pwned === "undefined", `hostile names: window.__pwned is ${injected.pwned} in the webview frame`);
  const outer = await page.locator("iframe.webview.ready:visible").last().contentFrame().locator("body").evaluate(() => typeof window.__pwned);
  check(outer === "undefined" && (await page.evaluate(() => typeof window.__pwned)) === "undefined", "hostile names: …and in the webview host frame and the workbench");
  await page.screenshot({ path: path.join(out, "hostile-names-report.png") });
  lap("hostile names done");

  // 3. the Findings tree in its activity-bar container
  await page.locator('.activitybar .action-item a[aria-label^="Model Doctor"], .activitybar .action-item[aria-label^="Model Doctor"]').first().click();
  const rows = page.locator('.pane:has(.pane-header[aria-label^="Findings"]) .monaco-list-row');
  await rows.filter({ hasText: "tanh_tiny_init.onnx" }).first().waitFor({ timeout: 30000 });
  const labels = await rows.allInnerTexts();
  check(labels.some((l) => /Warnings \(\d+\)/.test(l)) && labels.some((l) => /activation\.vanishing/.test(l)), `tree rows: ${labels.slice(0, 6).map((l) => l.replace(/\s+/g, " ")).join(" | ")}`);
  await rows.filter({ hasText: "activation.vanishing" }).first().click();
  wv = webview();
  await wv.locator(".finding.active").waitFor({ timeout: 30000 });
  check((await wv.locator(".finding.active").innerText()).includes("activation.vanishing"), "clicking a tree finding reveals it in the report");
  await page.screenshot({ path: path.join(out, "findings-tree.png") });

  // 4. keyboard inside the VS Code webview: arrows move through the findings
  wv = webview();
  await wv.locator(".finding").first().click();
  await page.keyboard.press("ArrowDown");
  check(await wv.locator(".finding.active").getAttribute("data-index") === "1", "webview keyboard: ArrowDown selects the next finding");

  // 5. Analyze with Probe Data…: the open dialog (code-server's simple file dialog) takes the .npy path
  await palette(">Model Doctor: Analyze with Probe Data", "Analyze with Probe Data");
  const dialog = page.locator(".quick-input-widget input");
  await dialog.waitFor();
  await page.waitForTimeout(300);
  await dialog.fill(path.resolve(workspace, "data", "tanh_tiny_init.probe.npy"));
  await page.waitForTimeout(300);
  await page.keyboard.press("Enter");
  wv = webview();
  await wv.locator("#inputs", { hasText: "from the data file" }).waitFor({ timeout: 30000 });
  check(/input 8×128 float32 \(from the data file\)/.test(await wv.locator("#inputs").innerText()), `probe data: ${await wv.locator("#inputs").innerText()}`);
  await page.screenshot({ path: path.join(out, "probe-data.png") });
  lap("probe data done");

  // 6. Cancel from the progress notification (a long probe: 1000 batches of a ResNet-18)
  const settingsFile = path.join(workspace, ".vscode", "settings.json");
  fs.mkdirSync(path.dirname(settingsFile), { recursive: true });
  fs.writeFileSync(settingsFile, JSON.stringify({ "modelDoctor.probe.batches": 1000 }));
  await page.waitForTimeout(1000);
  const analyzeResnet = async () => {
    await palette(">View: Close All Editors", "Close All Editors");
    await palette(">Model Doctor: Analyze Model", "Analyze Model");
    const pick = page.locator(".quick-input-widget input");
    await pick.fill("resnet18");
    await page.locator(".quick-input-list .monaco-list-row", { hasText: "resnet18.onnx" }).first().waitFor({ timeout: 10000 });
    await page.keyboard.press("Enter");
    const toast = page.locator(".notification-toast", { hasText: "analysing resnet18.onnx" });
    await toast.waitFor({ timeout: 20000 });
    return toast;
  };
  let toast = await analyzeResnet();
  const pid = await waitForWorker(15000);
  await page.waitForTimeout(1500);
  await page.screenshot({ path: path.join(out, "progress-notification.png") });
  await toast.locator(".monaco-button", { hasText: "Cancel" }).click();
  await toast.waitFor({ state: "detached", timeout: 10000 }).catch(() => {});
  check(await toast.count() === 0, "Cancel closes the progress notification");
  check(await waitForNoWorker(pid, 5000), `…and the worker (pid ${pid}) is gone`);
  await page.waitForTimeout(500);
  const status = await page.locator(".statusbar-item", { hasText: "Model Doctor" }).allInnerTexts().catch(() => []);
  check(!(await page.locator(".statusbar").innerText()).includes("analysing"), `…and the status bar is idle (${status.join(" | ")})`);
  check(await page.locator(".notification-toast", { hasText: "resnet18" }).count() === 0, "…and no error is shown for a cancel");
  lap("cancel done");

  // 7. kill -9 of the worker: a clear error; the next run works
  toast = await analyzeResnet();
  const victim = await waitForWorker(15000);
  await page.waitForTimeout(1000);
  process.kill(victim, "SIGKILL"); // the analysis worker this test's code-server started
  const err = page.locator(".notification-toast", { hasText: "stopped unexpectedly" });
  await err.waitFor({ timeout: 15000 });
  const errText = (await err.innerText()).replace(/\s+/g, " ");
  check(/resnet18\.onnx: the analysis worker stopped unexpectedly \(signal SIGKILL\)\. The next analysis starts a fresh worker\./.test(errText), `kill -9: "${errText.slice(0, 160)}"`);
  check(await err.locator(".monaco-button", { hasText: "Show Log" }).count() === 1, "…with a Show Log button");
  await page.screenshot({ path: path.join(out, "worker-killed.png") });
  fs.rmSync(settingsFile);
  await page.waitForTimeout(1000);
  await err.locator(".codicon-notifications-clear, .codicon-close").first().click().catch(() => {});
  toast = await analyzeResnet();
  wv = webview();
  await wv.locator("#chart-activation").waitFor({ timeout: 90000 });
  check(await wv.locator("canvas.hist").count() >= 20, `the next run works: resnet18 report with ${await wv.locator("canvas.hist").count()} histograms`);
  await page.screenshot({ path: path.join(out, "resnet18-report.png") });
  lap("kill -9 done");

  // 8. theme change: the report re-renders its charts in the new theme's colours
  const paletteBefore = JSON.parse(await wv.locator("#charts").getAttribute("data-palette"));
  await palette(">Preferences: Color Theme", /Preferences: Color Theme/);
  await page.locator(".quick-input-widget input").fill("Light Modern");
  await page.locator(".quick-input-list .monaco-list-row", { hasText: "Light Modern" }).first().waitFor({ timeout: 10000 });
  await page.keyboard.press("Enter");
  await page.waitForTimeout(1500);
  const after = JSON.parse(await webview().locator("#charts").getAttribute("data-palette"));
  check(paletteBefore.fg !== after.fg && paletteBefore.theme !== after.theme, `theme change re-renders the charts (${paletteBefore.theme} ${paletteBefore.fg} -> ${after.theme} ${after.fg})`);
  await page.screenshot({ path: path.join(out, "resnet18-light-theme.png") });
} catch (e) {
  failed++;
  console.log("ERROR", e);
  await page.screenshot({ path: path.join(out, "error.png") }).catch(() => {});
} finally {
  console.log("external requests attempted:", [...external].length);
  await browser.close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
