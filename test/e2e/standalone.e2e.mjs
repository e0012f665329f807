// usage: node --import tsx test/e2e/standalone.e2e.mjs OUT_DIR   (after `node scripts/build.mjs`)
// The report UI (dist/webview.js) in the standalone HTML export (src/report/html.ts), in headless Chromium
// (playwright-core + /usr/bin/chromium), without VS Code: the same bundle the report editor runs.
// Reports come from the CLI on fixtures: tiny-init tanh with its probe data, a NaN weight, a static-only
// run, and the tiny-init report with crafted gradient statistics (test/e2e/data/*.gradients.json) for the
// gradient chart, which renders only when those optional fields exist. Checks charts, NaN safety, the
// CSP (no violations, no network), keyboard access and the re-render on a theme change. Screenshots in OUT_DIR.
import { chromium } from "playwright-core";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { toHtml } from "../../src/report/html.ts";

const out = process.argv[2] ?? "dist/vscode-test-output";
fs.mkdirSync(out, { recursive: true });
const fx = (n) => `test/fixtures/models/${n}`;
let passed = 0, failed = 0;
const check = (cond, msg) => { console.log(`${cond ? "PASS" : "FAIL"}: ${msg}`); if (cond) passed++; else failed++; };

function cliReport(name, ...args) {
  const file = path.join(out, `standalone-${name}.json`);
  execFileSync(process.execPath, ["dist/cli.js", "analyze", ...args, "-f", "json", "--fail-on", "never", "-o", file], { stdio: ["ignore", "ignore", "inherit"] });
  return JSON.parse(fs.readFileSync(file, "utf8"));
}

const reports = {
  tiny: cliReport("tiny", fx("tanh_tiny_init.onnx"), "--input", fx("tanh_tiny_init.probe.npy")),
  nan: cliReport("nan", fx("nan_weight.onnx")),
  static: cliReport("static", fx("relu_he_deep.onnx"), "--static"),
  relu: cliReport("relu", fx("relu_he_deep.onnx")),
};
// the crafted gradient statistics, where the gradient engine will put them
const overlay = JSON.parse(fs.readFileSync("test/e2e/data/tanh_tiny_init.gradients.json", "utf8"));
const grad = structuredClone(reports.tiny);
grad.probe.loss = overlay.loss;
for (const l of grad.layers) {
  const g = overlay.layers[l.name];
  if (!g) continue;
  l.gradient = g.gradient;
  if (l.weight) l.weight.gradient = g.weightGradient;
}
// numbers that end in zeros must be shown whole (20 dead units of 100 are not "2/1")
grad.layers[1].activation.deadUnits = 20;
grad.layers[1].activation.units = 100;
reports.gradient = grad;
// the same report without any gradient field (a forward-only probe, or a report from before the gradient engine)
const forward = structuredClone(reports.tiny);
forward.probe.loss = null;
delete forward.probe.gradientCoverage;
for (const l of forward.layers) { delete l.gradient; if (l.weight) delete l.weight.gradient; }
reports.forward = forward;

const script = fs.readFileSync("dist/webview.js", "utf8");
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });

async function open(name, l10n) {
  const file = path.resolve(out, `standalone-${name}${l10n ? "-zh-cn" : ""}.html`);
  fs.writeFileSync(file, toHtml(reports[name], { script, fileName: `${name}.onnx`, generatedAt: "2026-01-01T00:00:00Z", ...(l10n ? { l10n, lang: "zh-cn" } : {}) }));
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  page.on("console", (m) => { if (m.type() === "error" || /Content Security Policy|Refused to/.test(m.text())) problems.push(`console: ${m.text()}`); });
  page.on("request", (r) => { if (!r.url().startsWith("file:") && !r.url().startsWith("data:")) problems.push(`request: ${r.url()}`); });
  await page.goto(pathToFileURL(file).toString());
  await page.locator("#findings").waitFor({ timeout: 10000 });
  return { page, problems };
}
const ids = (page) => page.locator("canvas[id]").evaluateAll((cs) => cs.map((c) => c.id));
const active = (page) => page.evaluate(() => { const a = document.activeElement; return a ? `${a.tagName.toLowerCase()}#${a.id}|${a.dataset.layer ?? ""}|${a.className}` : ""; });

try {
  // 1. tiny-init tanh: every forward chart, no gradient chart (the fields are absent)
  {
    const { page, problems } = await open("tiny");
    const c = await ids(page);
    check(["chart-activation", "chart-activation-std", "chart-weights", "chart-dead"].every((id) => c.includes(id)), `tiny: charts ${c.join(", ")}`);
    check(await page.locator("canvas.hist").count() === 10, "tiny: 10 histograms");
    // 10 init.scale-small findings: the first 3 in full, the other 7 one line each after the rest,
    // so activation.vanishing (report index 10) comes fifth.
    const order = await page.locator(".finding").evaluateAll((xs) => xs.map((x) => `${x.dataset.index}${x.classList.contains("repeat") ? "r" : ""}`));
    check(order.join(",") === "0,1,2,3,10,4r,5r,6r,7r,8r,9r,11r", `tiny: repeated findings fold to the end (${order.join(",")})`);

    // keyboard: the findings list is one tab stop; arrows move the focus and highlight the finding's layer
    await page.keyboard.press("Tab");
    let a = await active(page);
    check(a.startsWith("li#finding-0"), `Tab reaches the first finding (${a})`);
    await page.keyboard.press("ArrowDown");
    a = await active(page);
    check(a.startsWith("li#finding-1") && a.includes("active"), `ArrowDown moves to the next finding and selects it (${a})`);
    const layer1 = await page.locator("#finding-1").getAttribute("data-layer");
    check(await page.locator(`tr.selected[data-layer="${layer1}"]`).count() === 1, `…its layer ${layer1} is highlighted in the table`);
    await page.keyboard.press("End");
    a = await active(page);
    const lastId = await page.locator(".finding").last().getAttribute("id");
    check(a.startsWith(`li#${lastId}`), `End goes to the last finding in the list (${a})`);
    await page.keyboard.press("Tab");
    a = await active(page);
    check(a.startsWith("canvas#chart-activation"), `Tab leaves the list for the first chart (${a})`);
    await page.keyboard.press("Home");
    let ro = await page.locator("#readout").innerText();
    check(/^layers\.0 \(Gemm, tanh\).*activation mean .*std/.test(ro), `Home on a chart selects layers.0: "${ro}"`);
    await page.keyboard.press("ArrowRight");
    ro = await page.locator("#readout").innerText();
    check(ro.startsWith("layers.2 "), `ArrowRight on a chart selects the next layer: "${ro.slice(0, 60)}"`);
    check(await page.locator('tr.selected[data-layer="layers.2"]').count() === 1 && await page.locator('.hist-cell.selected[data-layer="layers.2"]').count() === 1, "…and highlights it in the table and the histogram grid");
    await page.screenshot({ path: path.join(out, "standalone-keyboard-chart.png") });
    // the histogram grid: one tab stop, arrows walk the cells
    await page.locator(".hist-cell").first().focus();
    await page.keyboard.press("ArrowRight");
    a = await active(page);
    check(a.includes("|layers.2|") && a.includes("hist-cell"), `ArrowRight in the histogram grid (${a})`);
    // the layer table: arrows move the selection
    await page.locator("table.layers tbody tr").first().focus();
    await page.keyboard.press("ArrowDown");
    a = await active(page);
    check(a.startsWith("tr#|layers.2|") && a.includes("selected"), `ArrowDown in the layer table selects the next row (${a})`);
    // theme change: new --vscode-* colours on <html> re-render the charts in them, keeping the focus
    const before = JSON.parse(await page.locator("#charts").getAttribute("data-palette"));
    await page.evaluate(() => {
      document.documentElement.style.setProperty("--vscode-foreground", "#1f1f1f");
      document.documentElement.style.setProperty("--vscode-editor-background", "#ffffff");
      document.documentElement.style.setProperty("--vscode-charts-blue", "#0000ff");
      document.body.classList.add("vscode-light");
    });
    await page.waitForFunction(() => JSON.parse(document.getElementById("charts").dataset.palette).fg === "#1f1f1f", null, { timeout: 5000 }).catch(() => {});
    const after = JSON.parse(await page.locator("#charts").getAttribute("data-palette"));
    check(before.fg !== after.fg && after.fg === "#1f1f1f" && after.blue === "#0000ff", `theme change re-renders the charts (${before.fg} -> ${after.fg})`);
    a = await active(page);
    check(a.startsWith("tr#|layers.2|"), `…and keeps the keyboard focus (${a})`);
    await page.screenshot({ path: path.join(out, "standalone-light-theme.png") });
    check(problems.length === 0, `tiny: no errors, CSP violations or requests ${problems.join(" | ")}`);
    await page.close();
  }

  // 2. the gradient chart is optional: none without gradient fields
  {
    const { page, problems } = await open("forward");
    const c = await ids(page);
    check(c.includes("chart-activation") && !c.includes("chart-gradient"), `forward-only: no gradient chart (${c.join(", ")})`);
    check(!(await page.locator("table.layers thead th").allInnerTexts()).includes("‖∂L/∂W‖₂"), "forward-only: no gradient columns");
    check(problems.length === 0, `forward-only: no errors ${problems.join(" | ")}`);
    await page.close();
  }

  // 3. crafted gradient statistics: the log-scale gradient chart and two table columns
  {
    const { page, problems } = await open("gradient");
    check((await ids(page)).includes("chart-gradient"), "gradient: #chart-gradient renders when layers[].gradient exists");
    const heads = await page.locator("table.layers thead th").allInnerTexts();
    check(heads.includes("‖∂L/∂W‖₂") && heads.includes("‖∂L/∂y‖₂"), `gradient: table columns ${heads.slice(-2).join(", ")}`);
    await page.locator("#chart-gradient").focus();
    await page.keyboard.press("End");
    const ro = await page.locator("#readout").innerText();
    check(/layers\.18 .*gradient ‖∂L\/∂W‖₂ 3\.37e-8, ‖∂L\/∂y‖₂ 0\.25/.test(ro), `gradient: read-out of the last layer "${ro}"`);
    await page.keyboard.press("Home");
    check(/layers\.0 .*‖∂L\/∂y‖₂ 7\.51e-10/.test(await page.locator("#readout").innerText()), "gradient: the first layer's output gradient has vanished to 7.5e-10");
    const row2 = await page.locator('tr[data-layer="layers.2"] td').allInnerTexts();
    check(row2[9] === "20/100", `gradient: 20 dead units of 100 read "${row2[9]}"`);
    const nanRow = await page.locator('tr[data-layer="layers.8"] td').allInnerTexts();
    check(nanRow.at(-2) === "—", `gradient: the NaN weight gradient shows as a gap (${nanRow.at(-2)})`);
    await page.locator("#chart-gradient").scrollIntoViewIfNeeded();
    await page.locator("#chart-gradient").locator("xpath=ancestor::figure").screenshot({ path: path.join(out, "standalone-gradient-chart.png") });
    check(problems.length === 0, `gradient: no errors ${problems.join(" | ")}`);
    await page.close();
  }

  // 4. NaN weights: charts must not break
  {
    const { page, problems } = await open("nan");
    const c = await ids(page);
    check(c.includes("chart-weights"), `nan: charts render (${c.join(", ")})`);
    check(/weights\.nonfinite|numeric\.nonfinite/.test(await page.locator("#findings").innerText()), "nan: the NaN finding is listed");
    check(problems.length === 0, `nan: no errors ${problems.join(" | ")}`);
    await page.screenshot({ path: path.join(out, "standalone-nan.png") });
    await page.close();
  }

  // 5. the layer table shows the report's numbers as they are (counts such as 20 dead units of 128, stds)
  {
    const { page, problems } = await open("relu");
    const rows = await page.locator("table.layers tbody tr").evaluateAll((trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
    const want = reports.relu.layers.map((l) => l.activation && l.activation.deadUnits !== null ? `${l.activation.deadUnits}/${l.activation.units}` : "");
    check(JSON.stringify(rows.map((r) => r[9])) === JSON.stringify(want), `relu: dead units column ${rows.map((r) => r[9]).join(" ")}`);
    const stds = rows.map((r, i) => Math.abs(Number(r[8]) - reports.relu.layers[i].activation.std) / reports.relu.layers[i].activation.std);
    check(stds.every((e) => e < 0.01), `relu: act. std column within 1% of the report (worst ${(Math.max(...stds) * 100).toFixed(2)}%)`);
    check(problems.length === 0, `relu: no errors ${problems.join(" | ")}`);
    await page.close();
  }

  // 6. the report in Simplified Chinese (the l10n bundle the extension embeds when VS Code's display language is zh-cn)
  {
    const zh = JSON.parse(fs.readFileSync("l10n/bundle.l10n.zh-cn.json", "utf8"));
    const { page, problems } = await open("gradient", zh);
    check((await page.locator("#findings h2").innerText()).startsWith("诊断结果 ("), `zh-cn: findings heading "${await page.locator("#findings h2").innerText()}"`);
    check(await page.locator("figcaption", { hasText: "每层梯度范数（对数坐标）" }).count() === 1, "zh-cn: gradient chart caption");
    await page.locator("#chart-activation").focus();
    await page.keyboard.press("Home");
    check(/激活值均值 .*标准差/.test(await page.locator("#readout").innerText()), `zh-cn: read-out "${(await page.locator("#readout").innerText()).slice(0, 60)}"`);
    check(await page.evaluate(() => document.documentElement.lang) === "zh-cn", "zh-cn: <html lang>");
    await page.screenshot({ path: path.join(out, "standalone-zh-cn.png") });
    check(problems.length === 0, `zh-cn: no errors ${problems.join(" | ")}`);
    await page.close();
  }

  // 7. static-only: no activation charts, a notice instead
  {
    const { page, problems } = await open("static");
    const c = await ids(page);
    check(c.includes("chart-weights") && !c.includes("chart-activation") && await page.locator("canvas.hist").count() === 0, `static: weight chart only (${c.join(", ")})`);
    check(/Static analysis only/.test(await page.locator("#static-notice").innerText()), "static: the static-analysis notice");
    check(problems.length === 0, `static: no errors ${problems.join(" | ")}`);
    await page.close();
  }
} catch (e) {
  failed++;
  console.log("ERROR", e);
} finally {
  await browser.close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
