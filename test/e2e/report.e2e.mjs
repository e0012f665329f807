// usage: node test/e2e/report.e2e.mjs BASE_URL EXT_DEV_PATH WORKSPACE OUT_DIR
// GUI test in a real VS Code (code-server) driven by playwright-core + Debian Chromium: runs
// commands from the F1 palette, opens the report editor for two models, checks the chart canvases
// and the findings inside the webview, clicks a finding, opens the Findings tree, saves screenshots.
import { chromium } from "playwright-core";
import fs from "node:fs";
import path from "node:path";

const [base, devPath, workspace, out = "test-output/e2e"] = process.argv.slice(2);
fs.mkdirSync(out, { recursive: true });
const url = new URL(base);
url.searchParams.set("folder", path.resolve(workspace));
url.searchParams.set("payload", JSON.stringify([["extensionDevelopmentPath", `vscode-remote://${url.host}${path.resolve(devPath)}`]]));
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
    try { await row.waitFor({ timeout: 2500 }); await page.keyboard.press("Enter"); return; }
    catch (e) { await page.keyboard.press("Escape"); if (Date.now() > deadline) throw e; await page.waitForTimeout(500); }
  }
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
  await palette(">Model Doctor: Analyze Model", "Analyze Model"); // the command on the active report
  await wv.locator("#chart-activation").waitFor({ timeout: 60000 });
  const canvases = await wv.locator("canvas").count();
  const hist = await wv.locator("canvas.hist").count();
  check(hist === 10, `tiny-init: ${hist} histogram canvases (10 layers), ${canvases} canvases in all`);
  for (const id of ["chart-activation", "chart-activation-std", "chart-weights", "chart-dead"]) check(await wv.locator(`#${id}`).count() === 1, `canvas #${id}`);
  const findingsText = await wv.locator("#findings").innerText();
  check(/activation\.vanishing/.test(findingsText) && /init\.scale-small/.test(findingsText), "findings list shows activation.vanishing and init.scale-small");
  check(/Fix:/.test(findingsText), "findings show a fix");
  await page.screenshot({ path: path.join(out, "tanh_tiny_init-report.png") });
  await wv.locator("#histograms").scrollIntoViewIfNeeded();
  await page.waitForTimeout(300);
  await page.screenshot({ path: path.join(out, "tanh_tiny_init-histograms.png") });
  // click the vanishing finding: its layer is highlighted in the table and the histogram grid
  await wv.locator(".finding", { hasText: "activation.vanishing" }).first().click();
  const selected = await wv.locator("tr.selected").count();
  check(selected === 1 && (await wv.locator("tr.selected").innerText()).includes("layers.18"), "clicking a finding highlights its layer (layers.18)");
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

  // 3. the Findings tree in its activity-bar container
  await page.locator('.activitybar .action-item a[aria-label^="Model Doctor"], .activitybar .action-item[aria-label^="Model Doctor"]').first().click();
  const rows = page.locator('.pane:has(.pane-header[aria-label^="Findings"]) .monaco-list-row');
  await rows.filter({ hasText: "tanh_tiny_init.onnx" }).first().waitFor({ timeout: 30000 });
  const labels = await rows.allInnerTexts();
  check(labels.some((l) => l.includes("Warnings (11)")), `tree rows: ${labels.slice(0, 6).map((l) => l.replace(/\s+/g, " ")).join(" | ")}`);
  await rows.filter({ hasText: "activation.vanishing" }).first().click();
  wv = webview();
  await wv.locator(".finding.active").waitFor({ timeout: 30000 });
  check((await wv.locator(".finding.active").innerText()).includes("activation.vanishing"), "clicking a tree finding reveals it in the report");
  await page.screenshot({ path: path.join(out, "findings-tree.png") });
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
