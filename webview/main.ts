// The report UI, bundled for the browser (dist/webview.js). Runs in two hosts:
// - the VS Code custom editor (acquireVsCodeApi exists): the report arrives by message;
// - a standalone HTML export (src/report/html.ts): the report is in <script id="md-report" type="application/json">.
// Every model-provided string goes into the DOM through textContent/attributes, never as HTML.
// Every number may be null (NaN/Infinity through JSON) and is checked before use.
// Keyboard: the findings list, the layer table and the histogram grid use arrow keys (roving focus);
// every chart is a tab stop whose arrow keys walk the layers (tooltip + a live read-out).
// Theme changes (VS Code swaps the --vscode-* variables and body classes) re-render the charts.
import {
  BarController, BarElement, CategoryScale, Chart, Filler, Legend, LinearScale, LineController, LineElement,
  LogarithmicScale, PointElement, Tooltip, type ActiveElement, type ChartConfiguration, type ChartDataset,
} from "chart.js";
import "@vscode-elements/elements/dist/vscode-badge/index.js";
import "@vscode-elements/elements/dist/vscode-button/index.js";
import "@vscode-elements/elements/dist/vscode-checkbox/index.js";
import "@vscode-elements/elements/dist/vscode-collapsible/index.js";
import "@vscode-elements/elements/dist/vscode-progress-ring/index.js";
import type { Finding, LayerReport, Report, WeightReport } from "../src/report/types";
import { loadBundle, t } from "./l10n";
import { isToWebview, type FromWebview, type ReportContext, type ToWebview } from "./protocol";
import { CSS } from "./styles";

Chart.register(BarController, BarElement, CategoryScale, Filler, Legend, LinearScale, LineController, LineElement, LogarithmicScale, PointElement, Tooltip);
Chart.defaults.animation = false;
// Tooltip numbers in our format (chart.js's own rounds 3e-8 to 0).
Chart.defaults.plugins.tooltip.callbacks.label = (c) => `${c.dataset.label ?? ""}: ${fmt(c.parsed.y)}`;

interface VsCodeApi {
  postMessage(message: FromWebview): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode: VsCodeApi | undefined = typeof acquireVsCodeApi === "function" ? acquireVsCodeApi() : undefined;
const post = (m: FromWebview): void => vscode?.postMessage(m);

// ---------- gradient statistics (optional: they arrive with the gradient engine) ----------

/** Norms of a gradient over a probe: `layers[].gradient` (w.r.t. the layer's output) and `layers[].weight.gradient`. */
export interface GradientStats {
  l2?: number | null;
  rms?: number | null;
  absMax?: number | null;
}
type LayerWithGradient = LayerReport & {
  gradient?: GradientStats | null;
  weight?: WeightReport & { gradient?: GradientStats | null };
};
const outputGradient = (l: LayerReport): GradientStats | null | undefined => (l as LayerWithGradient).gradient;
const weightGradient = (l: LayerReport): GradientStats | null | undefined => (l as LayerWithGradient).weight?.gradient;
/** A positive finite number (for log scales) or null. */
const positive = (v: unknown): number | null => { const n = num(v); return n !== null && n > 0 ? n : null; };

// ---------- helpers ----------

/** A finite number or null (NaN/Infinity/null/undefined/strings all give null). */
export function num(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}
function fmt(v: unknown, digits = 3): string {
  const n = num(v);
  if (n === null) return v === null || v === undefined ? "—" : "NaN";
  if (n === 0) return "0";
  const a = Math.abs(n);
  if (a >= 1e4 || a < 1e-3) return n.toExponential(2);
  if (a >= 10 ** digits) return String(Math.round(n)); // toPrecision would write 1234 as 1.23e+3
  const p = n.toPrecision(digits);
  return p.includes(".") && !p.includes("e") ? p.replace(/\.?0+$/, "") : p; // 0.0100 -> 0.01, but 100 stays 100
}
function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: (Node | string | null)[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) if (c !== null) e.append(c);
  return e;
}
function custom(tag: string, attrs: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElement {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}
function cssVar(name: string, fallback: string): string {
  const v = getComputedStyle(document.body).getPropertyValue(name).trim();
  return v || fallback;
}
function palette() {
  return {
    fg: cssVar("--vscode-foreground", "#cccccc"),
    grid: cssVar("--vscode-charts-lines", "rgba(128,128,128,0.35)"),
    blue: cssVar("--vscode-charts-blue", "#3794ff"),
    red: cssVar("--vscode-charts-red", "#f14c4c"),
    yellow: cssVar("--vscode-charts-yellow", "#cca700"),
    orange: cssVar("--vscode-charts-orange", "#d18616"),
    green: cssVar("--vscode-charts-green", "#89d185"),
    purple: cssVar("--vscode-charts-purple", "#b180d7"),
    focus: cssVar("--vscode-focusBorder", "#007fd4"),
  };
}
type Palette = ReturnType<typeof palette>;
function alpha(color: string, a: number): string {
  const m = /^#([0-9a-f]{6})$/i.exec(color);
  if (!m) return color;
  const n = parseInt(m[1], 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${a})`;
}

// ---------- state ----------

let current: { report: Report; context: ReportContext } | undefined;
let selectedLayer: string | null = null;
let sharedHistogramAxis = true;
const charts: Chart[] = [];
const root = (): HTMLElement => document.getElementById("app") ?? document.body;

function installStyles(): void {
  try {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
  } catch {
    const s = document.createElement("style");
    const nonce = (document.querySelector("script[nonce]") as HTMLScriptElement | null)?.nonce;
    if (nonce) s.nonce = nonce;
    s.textContent = CSS;
    document.head.append(s);
  }
}

// ---------- rendering ----------

function layerLabel(l: LayerReport): string {
  return l.name || `#${l.id}`;
}

function renderStatus(text: string, busy: boolean): void {
  destroyCharts();
  const r = root();
  r.replaceChildren(el("div", { class: "status", role: "status", id: "status" }, busy ? custom("vscode-progress-ring") : "", el("span", {}, text)));
}

function destroyCharts(): void {
  while (charts.length) charts.pop()!.destroy();
}

let renders = 0;
function render(report: Report, context: ReportContext): void {
  destroyCharts();
  document.body.dataset.renders = String(++renders); // lets tests wait for a new report
  const r = root();
  r.replaceChildren();
  const s = report.summary ?? { errors: 0, warnings: 0, infos: 0 };
  const probe = report.probe?.ran
    ? num(report.probe.seconds) !== null
      ? t("probe: {0} × batch {1} in {2} s", report.probe.batches, report.probe.batchSize, fmt(report.probe.seconds))
      : t("probe: {0} × batch {1}", report.probe.batches, report.probe.batchSize)
    : t("static analysis only");
  const header = el("header", { class: "header" },
    el("h1", {}, context.fileName),
    el("div", { class: "meta" },
      t("{0} · IR {1} · {2} parameters · {3} layers · {4}", report.model?.producer || t("unknown producer"), fmt(report.model?.irVersion), (report.model?.parameterCount ?? 0).toLocaleString("en-US"), report.layers.length, probe)),
    report.probe?.ran && report.probe.inputs?.length
      ? el("div", { class: "meta", id: "inputs" }, t("inputs: {0}", report.probe.inputs.map((i) => `${i.name} ${i.shape.join("×")} ${i.dtype} (${inputSource(i.source)})`).join(", ")))
      : null,
    el("div", { class: "badges" },
      custom("vscode-badge", { variant: "counter", class: "sev-error", title: t("errors") }, String(s.errors)), el("span", {}, ` ${t("errors")} `),
      custom("vscode-badge", { variant: "counter", class: "sev-warning", title: t("warnings") }, String(s.warnings)), el("span", {}, ` ${t("warnings")} `),
      custom("vscode-badge", { variant: "counter", class: "sev-info", title: t("infos") }, String(s.infos)), el("span", {}, ` ${t("infos")}`)),
  );
  if (vscode) {
    const again = custom("vscode-button", { id: "reanalyze" }, t("Analyze again"));
    again.addEventListener("click", () => post({ type: "reanalyze", staticOnly: false }));
    const exp = custom("vscode-button", { id: "export", secondary: "" }, t("Export…"));
    exp.addEventListener("click", () => post({ type: "export" }));
    header.append(el("div", { class: "actions" }, again, " ", exp));
  }
  r.append(header);
  if (!report.probe?.ran) {
    r.append(el("p", { class: "notice", role: "note", id: "static-notice" },
      context.untrusted
        ? t("This workspace is not trusted, so the model was not run: only its weights were checked. Trust the workspace to see activation statistics.")
        : report.probe?.error ? t("The probe could not run: {0}", report.probe.error) : t("Static analysis only: the model was not run, so there are no activation statistics.")));
  }
  r.append(renderFindings(report.findings));
  r.append(renderCharts(report));
  r.append(renderLayerTable(report.layers));
  applyHighlight();
}

function severityLabel(severity: string): string {
  return severity === "error" ? t("error") : severity === "warning" ? t("warning") : severity === "info" ? t("info") : severity;
}

function inputSource(source: string): string {
  const names: Record<string, string> = {
    file: t("from the data file"), "synthetic-normal": t("synthetic N(0,1)"), "synthetic-ids": t("synthetic ids"),
    "synthetic-ones": t("ones"), fill: t("constant"),
  };
  return names[source] ?? source;
}

// ---------- keyboard: roving focus over a list of items ----------

/**
 * Makes `items` one tab stop: arrow keys (Up/Down, plus Left/Right when `horizontal`), Home and End move
 * the focus; `onMove` runs for the newly focused item. `cols` gives the row length for grids.
 */
function roving(items: HTMLElement[], onMove: (item: HTMLElement, index: number) => void, opts: { horizontal?: boolean; cols?: () => number } = {}): void {
  items.forEach((it, i) => {
    it.tabIndex = i === 0 ? 0 : -1;
    it.addEventListener("keydown", (e) => {
      const cols = opts.cols?.() ?? 1;
      let j = -1;
      if (e.key === "ArrowDown") j = i + cols;
      else if (e.key === "ArrowUp") j = i - cols;
      else if (opts.horizontal && e.key === "ArrowRight") j = i + 1;
      else if (opts.horizontal && e.key === "ArrowLeft") j = i - 1;
      else if (e.key === "Home") j = 0;
      else if (e.key === "End") j = items.length - 1;
      else return;
      e.preventDefault();
      j = Math.max(0, Math.min(items.length - 1, j));
      focusItem(items, j);
      onMove(items[j], j);
    });
  });
}
function focusItem(items: HTMLElement[], j: number): void {
  items.forEach((x, k) => { x.tabIndex = k === j ? 0 : -1; });
  items[j]?.focus();
}

function selectLayer(name: string | null, findingIndex?: number, fromChart?: Chart): void {
  selectedLayer = name;
  applyHighlight(findingIndex, fromChart);
  post({ type: "selected", layer: name });
}

function renderFindings(findings: readonly Finding[]): HTMLElement {
  const section = el("section", { id: "findings", "aria-label": t("Findings") }, el("h2", {}, t("Findings ({0})", findings.length)));
  if (!findings.length) {
    section.append(el("p", { class: "empty" }, t("No findings: nothing looks wrong with this model.")));
    return section;
  }
  const list = el("ul", { class: "findings", role: "listbox", "aria-label": t("Findings ({0})", findings.length) });
  const items: HTMLElement[] = [];
  // One rule on many layers (a whole net of constant weights) would bury the rest: its first
  // findings show in full, the others move to the end as one-line entries. Indices stay the
  // report's, so the tree and the Problems panel still reveal the right entry.
  const order = repeatsLast(findings);
  order.forEach(({ index: i, repeat }, position) => {
    const f = findings[i];
    const evidence = repeat ? "" : Object.entries(f.evidence ?? {}).map(([k, v]) => `${k}: ${Array.isArray(v) ? `[${v.map((x) => fmt(x)).join(", ")}]` : typeof v === "number" || v === null ? fmt(v) : String(v)}`).join(" · ");
    const item = el("li", { class: `finding sev-${f.severity}${repeat ? " repeat" : ""}`, role: "option", "aria-selected": "false", id: `finding-${i}`, "data-index": String(i), "data-layer": f.layer ?? "", "aria-label": `${f.severity} ${f.category} ${f.layer ?? ""}: ${f.message}`, title: repeat ? f.message : "" },
      el("div", { class: "finding-head" },
        el("span", { class: `sev sev-${f.severity}` }, severityLabel(f.severity)),
        el("code", { class: "category" }, f.category),
        f.layer ? el("span", { class: "layer" }, f.layer) : null,
        repeat ? el("span", { class: "repeat-note" }, t("same as above, for this layer")) : null),
      repeat ? null : el("div", { class: "message" }, f.message),
      evidence ? el("div", { class: "evidence" }, evidence) : null,
      repeat ? null : el("div", { class: "fix" }, el("strong", {}, t("Fix:") + " "), f.fix));
    item.addEventListener("click", () => { focusItem(items, position); selectLayer(f.layer ?? null, i); });
    item.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); selectLayer(f.layer ?? null, i); }
    });
    items.push(item);
    list.append(item);
  });
  // Selection follows focus: arrows move through the findings and highlight each one's layer.
  roving(items, (_item, j) => selectLayer(findings[order[j].index].layer ?? null, order[j].index));
  section.append(list);
  return section;
}

/** Findings shown in full before the rest of the same rule and severity go to the end, one line each. */
const FULL_REPEATS = 3;

/** Report order, except that the findings of a rule past its first {@link FULL_REPEATS} follow all others. */
function repeatsLast(findings: readonly Finding[]): { index: number; repeat: boolean }[] {
  const seen = new Map<string, number>();
  const counts = new Map<string, number>();
  for (const f of findings) counts.set(`${f.severity} ${f.ruleId}`, (counts.get(`${f.severity} ${f.ruleId}`) ?? 0) + 1);
  const first: { index: number; repeat: boolean }[] = [];
  const rest: { index: number; repeat: boolean }[] = [];
  findings.forEach((f, index) => {
    const key = `${f.severity} ${f.ruleId}`;
    const n = (seen.get(key) ?? 0) + 1;
    seen.set(key, n);
    // A rule with one finding more than shown in full is not worth folding.
    if (n > FULL_REPEATS && counts.get(key)! > FULL_REPEATS + 1) rest.push({ index, repeat: true });
    else first.push({ index, repeat: false });
  });
  return [...first, ...rest];
}

function chartBox(id: string, title: string, note?: string): { box: HTMLElement; canvas: HTMLCanvasElement } {
  const canvas = el("canvas", {
    id, role: "img", tabindex: "0", class: "chart-canvas",
    "aria-label": `${title}. ${t("Use the arrow keys to move through the layers.")}`, "aria-describedby": "readout",
  });
  const box = el("figure", { class: "chart" }, el("figcaption", {}, title), el("div", { class: "chart-box" }, canvas), note ? el("p", { class: "note" }, note) : null);
  return { box, canvas };
}

function layerIndexAt(index: number | undefined): void {
  const layers = current?.report.layers ?? [];
  if (index !== undefined && layers[index]) selectLayer(layers[index].name);
}

function baseOptions(p: Palette, yTitle: string, log = false): ChartConfiguration["options"] {
  return {
    responsive: true, maintainAspectRatio: false,
    interaction: { mode: "index", intersect: false },
    plugins: {
      legend: { labels: { color: p.fg, boxWidth: 12 } },
      tooltip: { enabled: true },
    },
    scales: {
      x: { ticks: { color: p.fg, autoSkip: true, maxRotation: 60 }, grid: { color: p.grid } },
      y: {
        type: log ? "logarithmic" : "linear", title: { display: true, text: yTitle, color: p.fg }, grid: { color: p.grid },
        ticks: { color: p.fg, ...(log ? { callback: (v: number | string, _i: number, ticks: { value: number }[]) => logTick(Number(v), ticks) } : {}) },
      },
    },
    onClick: (_e, elements) => layerIndexAt(elements[0]?.index),
  };
}

/** Tick label of a log axis: powers of ten only (1e-4 rather than 1.00e-4). */
function decade(n: number): string {
  if (!(n > 0) || !Number.isFinite(n)) return "";
  const e = Math.round(Math.log10(n));
  if (Math.abs(Math.log10(n) - e) > 1e-6) return "";
  return e >= -2 && e <= 3 ? String(10 ** e >= 1 ? 10 ** e : Number((10 ** e).toFixed(-e))) : `1e${e}`;
}

/** Log-axis labels: powers of ten, or every tick when the axis spans less than two decades. */
function logTick(n: number, ticks: { value: number }[]): string {
  const vals = ticks.map((t) => t.value).filter((x) => x > 0);
  const span = vals.length ? Math.max(...vals) / Math.min(...vals) : Infinity;
  return span < 100 ? String(Number(n.toPrecision(2))) : decade(n);
}

function pointStyle(layers: readonly LayerReport[], base: string, p: Palette) {
  return {
    pointRadius: layers.map((l) => (l.name === selectedLayer ? 6 : 2)),
    pointBackgroundColor: layers.map((l) => (l.name === selectedLayer ? p.focus : base)),
  };
}

/** Arrow keys on a chart canvas walk the layers; Escape clears the selection. */
function chartKeys(canvas: HTMLCanvasElement, chart: Chart): void {
  canvas.addEventListener("keydown", (e) => {
    const layers = current?.report.layers ?? [];
    if (!layers.length) return;
    const i = layers.findIndex((l) => l.name === selectedLayer);
    let j: number;
    if (e.key === "ArrowRight" || e.key === "ArrowDown") j = i < 0 ? 0 : Math.min(layers.length - 1, i + 1);
    else if (e.key === "ArrowLeft" || e.key === "ArrowUp") j = i < 0 ? layers.length - 1 : Math.max(0, i - 1);
    else if (e.key === "Home") j = 0;
    else if (e.key === "End") j = layers.length - 1;
    else if (e.key === "PageDown") j = Math.min(layers.length - 1, Math.max(0, i) + 10);
    else if (e.key === "PageUp") j = Math.max(0, i - 10);
    else if (e.key === "Escape") { selectLayer(null); return; }
    else return;
    e.preventDefault();
    selectLayer(layers[j].name, undefined, chart);
  });
  canvas.addEventListener("blur", () => { chart.setActiveElements([]); chart.tooltip?.setActiveElements([], { x: 0, y: 0 }); chart.update("none"); });
}

function addChart(canvas: HTMLCanvasElement, config: ChartConfiguration): Chart {
  const chart = new Chart(canvas, config);
  charts.push(chart);
  if (canvas.tabIndex >= 0) chartKeys(canvas, chart);
  return chart;
}

function renderCharts(report: Report): HTMLElement {
  const p = palette();
  const layers = report.layers;
  const labels = layers.map(layerLabel);
  const section = el("section", { id: "charts", "aria-label": t("Charts"), "data-palette": JSON.stringify({ fg: p.fg, blue: p.blue, theme: document.body.dataset.vscodeThemeId ?? "" }) }, el("h2", {}, t("Layers")));
  section.append(el("p", { id: "readout", class: "readout", role: "status", "aria-live": "polite" }, t("Select a layer (click a chart, a finding or a table row, or use the arrow keys on a chart) to see its numbers.")));
  const grid = el("div", { class: "chart-grid" });
  section.append(grid);
  const hasActivations = layers.some((l) => l.activation);

  if (hasActivations) {
    const mean = layers.map((l) => num(l.activation?.mean));
    const std = layers.map((l) => num(l.activation?.std));
    const upper = mean.map((m, i) => (m !== null && std[i] !== null ? m + std[i]! : null));
    const lower = mean.map((m, i) => (m !== null && std[i] !== null ? m - std[i]! : null));
    const a = chartBox("chart-activation", t("Activation mean ± std per layer"));
    grid.append(a.box);
    addChart(a.canvas, {
      type: "line",
      data: {
        labels,
        datasets: [
          { label: t("mean + std"), data: upper, borderColor: alpha(p.blue, 0.4), backgroundColor: alpha(p.blue, 0.18), pointRadius: 0, fill: "+1", borderWidth: 1 },
          { label: t("mean − std"), data: lower, borderColor: alpha(p.blue, 0.4), pointRadius: 0, fill: false, borderWidth: 1 },
          { label: t("mean"), data: mean, borderColor: p.blue, backgroundColor: p.blue, borderWidth: 2, ...pointStyle(layers, p.blue, p) },
        ],
      },
      options: baseOptions(p, t("activation")),
    });
    const b = chartBox("chart-activation-std", t("Activation std per layer (log scale)"), t("A straight downward line means the signal shrinks by a constant factor per layer (vanishing); upward means exploding."));
    grid.append(b.box);
    addChart(b.canvas, {
      type: "line",
      data: { labels, datasets: [{ label: t("std"), data: std.map(positive), borderColor: p.purple, backgroundColor: p.purple, borderWidth: 2, ...pointStyle(layers, p.purple, p) }] },
      options: baseOptions(p, t("std"), true),
    });
  }

  // A normalization's scale (gamma) is no weight with an initialisation to compare: plotted as
  // "weight std" next to convolutions it looked like their spread.
  const wl = layers.filter((l) => l.weight && l.kind !== "norm");
  if (wl.length) {
    const c = chartBox("chart-weights", t("Weight std vs He / Xavier expected std"));
    grid.append(c.box);
    const ds: ChartDataset<"bar" | "line", (number | null)[]>[] = [
      { type: "bar", label: t("weight std"), data: layers.map((l) => (l.kind === "norm" ? null : num(l.weight?.std))), backgroundColor: layers.map((l) => (l.name === selectedLayer ? p.focus : alpha(p.orange, 0.75))) },
      { type: "line", label: "He √(2/fan_in)", data: layers.map((l) => num(l.weight?.expectedStd?.he)), borderColor: p.red, backgroundColor: p.red, pointRadius: 2, borderDash: [4, 3], spanGaps: false },
      { type: "line", label: "Xavier √(2/(fan_in+fan_out))", data: layers.map((l) => num(l.weight?.expectedStd?.xavier)), borderColor: p.green, backgroundColor: p.green, pointRadius: 2, borderDash: [2, 2] },
    ];
    addChart(c.canvas, { type: "bar", data: { labels, datasets: ds as unknown as ChartDataset[] }, options: baseOptions(p, t("std")) });
  }

  if (hasActivations) {
    const d = chartBox("chart-dead", t("Dead / saturated / zero fraction per layer"));
    grid.append(d.box);
    addChart(d.canvas, {
      type: "bar",
      data: {
        labels,
        datasets: [
          { label: t("dead units"), data: layers.map((l) => { const u = num(l.activation?.units); const dd = num(l.activation?.deadUnits); return u && dd !== null ? dd / u : null; }), backgroundColor: alpha(p.red, 0.8) },
          { label: t("saturated"), data: layers.map((l) => num(l.activation?.saturatedFraction)), backgroundColor: alpha(p.yellow, 0.8) },
          { label: t("zero values"), data: layers.map((l) => num(l.activation?.zeroFraction)), backgroundColor: alpha(p.blue, 0.6) },
        ],
      },
      options: { ...baseOptions(p, t("fraction")), scales: { ...baseOptions(p, t("fraction"))!.scales, y: { min: 0, max: 1, title: { display: true, text: t("fraction"), color: p.fg }, ticks: { color: p.fg }, grid: { color: p.grid } } } },
    });
  }

  // Gradient norms per layer, only when the report carries them (the gradient engine's fields are optional).
  const gOut = layers.map((l) => positive(outputGradient(l)?.l2));
  const gW = layers.map((l) => positive(weightGradient(l)?.l2));
  if (gOut.some((v) => v !== null) || gW.some((v) => v !== null)) {
    const g = chartBox("chart-gradient", t("Gradient norm per layer (log scale)"),
      t("‖∂L/∂W‖₂ of each layer's weights and ‖∂L/∂y‖₂ of its output, from the output (right) back to the input (left). A line that falls steadily towards the input means vanishing gradients; one that rises, exploding."));
    grid.append(g.box);
    const datasets: ChartDataset<"line", (number | null)[]>[] = [];
    if (gW.some((v) => v !== null)) datasets.push({ label: t("weight gradient ‖∂L/∂W‖₂"), data: gW, borderColor: p.orange, backgroundColor: p.orange, borderWidth: 2, spanGaps: true, ...pointStyle(layers, p.orange, p) });
    if (gOut.some((v) => v !== null)) datasets.push({ label: t("output gradient ‖∂L/∂y‖₂"), data: gOut, borderColor: p.green, backgroundColor: p.green, borderWidth: 2, borderDash: [5, 3], spanGaps: true, ...pointStyle(layers, p.green, p) });
    addChart(g.canvas, { type: "line", data: { labels, datasets: datasets as unknown as ChartDataset[] }, options: baseOptions(p, t("L2 norm"), true) });
    const about = gradientNote(report);
    if (about) g.box.append(el("p", { class: "note", id: "gradient-note" }, about));
  }

  if (hasActivations) section.append(renderHistograms(layers, p));
  return section;
}

/** The loss the gradients are of and the layers they reach (optional fields of the gradient engine). */
function gradientNote(report: Report): string {
  const probe = report.probe as Report["probe"] & {
    loss?: { name?: string; definition?: string } | null;
    gradientCoverage?: { layers?: number; supported?: number; unsupportedOps?: { op?: string; count?: number }[] } | null;
  };
  const parts: string[] = [];
  if (probe.loss?.name) parts.push(t("Loss: {0}", probe.loss.definition ? `${probe.loss.name} (${probe.loss.definition})` : probe.loss.name));
  const cov = probe.gradientCoverage;
  if (cov && num(cov.layers) !== null && num(cov.supported) !== null) {
    parts.push(t("gradients reach {0} of {1} layers", cov.supported!, cov.layers!));
    const ops = (cov.unsupportedOps ?? []).filter((o) => o.op).map((o) => `${o.op} ×${o.count ?? 1}`);
    if (ops.length) parts.push(t("stopped at ops without a gradient rule: {0}", ops.join(", ")));
  }
  return parts.join(" · ");
}

/** Re-bins a histogram onto [lo, hi] with n bins (mass split by overlap). Returns fractions. */
export function rebin(h: { lo: number; hi: number; counts: number[] }, lo: number, hi: number, n: number): number[] {
  const out = new Array<number>(n).fill(0);
  const total = h.counts.reduce((a, b) => a + (num(b) ?? 0), 0);
  if (!total || !(hi > lo)) return out;
  const k = h.counts.length;
  const w = (h.hi - h.lo) / k;
  const tw = (hi - lo) / n;
  for (let i = 0; i < k; i++) {
    const c = num(h.counts[i]) ?? 0;
    if (!c) continue;
    if (!(w > 0)) {
      const j = Math.min(n - 1, Math.max(0, Math.floor((h.lo - lo) / tw)));
      out[j] += c / total;
      continue;
    }
    const a = h.lo + i * w, b = a + w;
    const j0 = Math.max(0, Math.floor((a - lo) / tw)), j1 = Math.min(n - 1, Math.floor((b - lo) / tw));
    for (let j = j0; j <= j1; j++) {
      const ov = Math.min(b, lo + (j + 1) * tw) - Math.max(a, lo + j * tw);
      if (ov > 0) out[j] += (c * ov) / w / total;
    }
  }
  return out;
}

function renderHistograms(layers: readonly LayerReport[], p: Palette): HTMLElement {
  const withHist = layers.filter((l) => l.activation?.histogram && num(l.activation.histogram.lo) !== null && num(l.activation.histogram.hi) !== null);
  const section = el("section", { id: "histograms", "aria-label": t("Activation histograms") });
  const toggle = custom("vscode-checkbox", sharedHistogramAxis ? { checked: "", id: "shared-axis" } : { id: "shared-axis" }, t("Same x-axis for every layer"));
  toggle.addEventListener("change", () => {
    sharedHistogramAxis = !sharedHistogramAxis;
    if (current) rerender();
  });
  section.append(el("h2", {}, t("Activation distribution per layer")), el("p", { class: "note" },
    t("Each panel is the distribution of one layer's outputs on the probe. With a shared x-axis, a distribution that narrows layer after layer means vanishing activations; one that piles up at ±1 (tanh) or at 0 (ReLU) means saturated or dead units.")), toggle);
  if (!withHist.length) return section;
  let gLo = Infinity, gHi = -Infinity;
  for (const l of withHist) { gLo = Math.min(gLo, l.activation!.histogram.lo); gHi = Math.max(gHi, l.activation!.histogram.hi); }
  const m = Math.max(Math.abs(gLo), Math.abs(gHi));
  if (gLo < 0 && gHi > 0) { gLo = -m; gHi = m; }
  const bins = 41;
  const grid = el("div", { class: "hist-grid", role: "listbox", "aria-label": t("Activation histograms") });
  section.append(grid);
  const shown = withHist.slice(0, 96);
  const cells: HTMLElement[] = [];
  for (const l of shown) {
    const h = l.activation!.histogram;
    let data: number[], lbl: string[];
    if (sharedHistogramAxis) {
      data = rebin(h, gLo, gHi, bins);
      lbl = data.map((_, i) => fmt(gLo + ((i + 0.5) * (gHi - gLo)) / bins, 2));
    } else {
      const total = h.counts.reduce((a, b) => a + (num(b) ?? 0), 0) || 1;
      data = h.counts.map((c) => (num(c) ?? 0) / total);
      lbl = h.counts.map((_, i) => fmt(h.lo + ((i + 0.5) * (h.hi - h.lo)) / h.counts.length, 2));
    }
    const desc = `${l.activationFunction ?? l.op} · std ${fmt(l.activation?.std)}`;
    const canvas = el("canvas", { class: "hist", "data-layer": l.name, role: "img", "aria-label": t("activation histogram of {0}", l.name) });
    const sel = l.name === selectedLayer;
    const fig = el("figure", { class: `hist-cell${sel ? " selected" : ""}`, "data-layer": l.name, role: "option", "aria-selected": String(sel), "aria-label": `${layerLabel(l)}: ${desc}` },
      el("figcaption", {}, el("span", { class: "hist-name" }, layerLabel(l)), el("span", { class: "hist-std" }, ` ${desc}`)),
      el("div", { class: "hist-box" }, canvas));
    fig.addEventListener("click", () => { focusItem(cells, cells.indexOf(fig)); selectLayer(l.name); });
    cells.push(fig);
    grid.append(fig);
    charts.push(new Chart<"bar", number[], string>(canvas, {
      type: "bar",
      data: { labels: lbl, datasets: [{ label: l.name, data, backgroundColor: sel ? p.focus : alpha(p.blue, 0.85), barPercentage: 1, categoryPercentage: 1 }] },
      options: {
        responsive: true, maintainAspectRatio: false,
        plugins: { legend: { display: false }, tooltip: { enabled: true } },
        scales: {
          x: { ticks: { color: p.fg, maxTicksLimit: 3, maxRotation: 0, font: { size: 9 } }, grid: { display: false } },
          y: { display: false, beginAtZero: true },
        },
      },
    }) as unknown as Chart);
  }
  // One tab stop; arrows move over the grid (Up/Down by a row) and select the layer under the focus.
  const cols = (): number => { const top = cells[0]?.offsetTop; return Math.max(1, cells.filter((c) => c.offsetTop === top).length); };
  roving(cells, (cell) => selectLayer(cell.dataset.layer ?? null), { horizontal: true, cols });
  if (withHist.length > shown.length) section.append(el("p", { class: "note" }, t("{0} more layers not shown.", withHist.length - shown.length)));
  return section;
}

function renderLayerTable(layers: readonly LayerReport[]): HTMLElement {
  const section = el("section", { id: "layers", "aria-label": t("Layer table") }, el("h2", {}, t("Layer table")));
  const table = el("table", { class: "layers" });
  const hasGrad = layers.some((l) => positive(weightGradient(l)?.l2) !== null || positive(outputGradient(l)?.l2) !== null);
  const heads = ["#", t("layer"), t("op"), t("activation"), t("weight std"), "Xavier", "He", t("act. mean"), t("act. std"), t("dead"), t("saturated")];
  if (hasGrad) heads.push("‖∂L/∂W‖₂", "‖∂L/∂y‖₂");
  table.append(el("thead", {}, el("tr", {}, ...heads.map((h) => el("th", { scope: "col" }, h)))));
  const body = el("tbody");
  const rows: HTMLElement[] = [];
  for (const l of layers) {
    const a = l.activation;
    const tr = el("tr", { "data-layer": l.name, "aria-selected": "false" },
      el("td", {}, String(l.id)), el("td", {}, layerLabel(l)), el("td", {}, l.op), el("td", {}, l.activationFunction ?? ""),
      el("td", {}, fmt(l.weight?.std)), el("td", {}, fmt(l.weight?.expectedStd?.xavier)), el("td", {}, fmt(l.weight?.expectedStd?.he)),
      el("td", {}, fmt(a?.mean)), el("td", {}, fmt(a?.std)),
      el("td", {}, a && a.deadUnits !== null && a.units !== null ? `${fmt(a.deadUnits)}/${fmt(a.units)}` : ""),
      el("td", {}, a ? fmt(a.saturatedFraction) : ""));
    if (hasGrad) tr.append(el("td", {}, fmt(weightGradient(l)?.l2)), el("td", {}, fmt(outputGradient(l)?.l2)));
    tr.addEventListener("click", () => { focusItem(rows, rows.indexOf(tr)); selectLayer(l.name); });
    tr.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); selectLayer(l.name); } });
    rows.push(tr);
    body.append(tr);
  }
  roving(rows, (row) => selectLayer(row.dataset.layer ?? null));
  table.append(body);
  section.append(table);
  return section;
}

/** One line of numbers about the selected layer (also read out by screen readers). */
function readout(l: LayerReport | undefined): string {
  if (!l) return t("Select a layer (click a chart, a finding or a table row, or use the arrow keys on a chart) to see its numbers.");
  const parts = [`${layerLabel(l)} (${[l.op, l.activationFunction].filter(Boolean).join(", ")})`];
  if (l.activation) parts.push(t("activation mean {0}, std {1}", fmt(l.activation.mean), fmt(l.activation.std)));
  if (l.activation && num(l.activation.units)) parts.push(t("dead units {0}/{1}", fmt(l.activation.deadUnits), fmt(l.activation.units)));
  if (l.activation && l.activation.saturatedFraction !== null) parts.push(t("saturated {0}", fmt(l.activation.saturatedFraction)));
  if (l.weight) parts.push(t("weight std {0} (He {1}, Xavier {2})", fmt(l.weight.std), fmt(l.weight.expectedStd?.he), fmt(l.weight.expectedStd?.xavier)));
  const gw = weightGradient(l)?.l2, go = outputGradient(l)?.l2;
  if (num(gw) !== null || num(go) !== null) parts.push(t("gradient ‖∂L/∂W‖₂ {0}, ‖∂L/∂y‖₂ {1}", fmt(gw), fmt(go)));
  return parts.join(" · ");
}

/** Shows chart.js's tooltip and active points for the layer at `index` (keyboard navigation). */
function showTooltip(chart: Chart, index: number): void {
  const active: ActiveElement[] = [];
  chart.data.datasets.forEach((ds, di) => {
    const v = (ds.data as unknown[])[index];
    if (v !== null && v !== undefined && chart.isDatasetVisible(di)) active.push({ datasetIndex: di, index, element: chart.getDatasetMeta(di).data[index] });
  });
  if (!active.length) { chart.setActiveElements([]); chart.tooltip?.setActiveElements([], { x: 0, y: 0 }); return; }
  chart.setActiveElements(active);
  const pt = active[0].element;
  chart.tooltip?.setActiveElements(active, { x: pt?.x ?? 0, y: pt?.y ?? 0 });
}

/** Marks the selected layer everywhere: findings, table rows, histogram cells, chart points, the read-out. */
function applyHighlight(findingIndex?: number, fromChart?: Chart): void {
  const p = palette();
  document.querySelectorAll<HTMLElement>("[data-layer]").forEach((e) => {
    const sel = !!selectedLayer && e.dataset.layer === selectedLayer;
    e.classList.toggle("selected", sel);
    if (e.hasAttribute("aria-selected") && !e.classList.contains("finding")) e.setAttribute("aria-selected", String(sel));
  });
  document.querySelectorAll<HTMLElement>(".finding").forEach((e) => {
    const on = findingIndex !== undefined && e.dataset.index === String(findingIndex);
    e.classList.toggle("active", on);
    e.setAttribute("aria-selected", String(on));
    if (findingIndex !== undefined && document.getElementById(`finding-${findingIndex}`)) e.tabIndex = on ? 0 : -1; // the list's tab stop follows the selection
  });
  const layers = current?.report.layers ?? [];
  const index = layers.findIndex((l) => l.name === selectedLayer);
  for (const c of charts) {
    if (c.canvas.classList.contains("hist")) {
      const sel = c.canvas.dataset.layer === selectedLayer;
      c.data.datasets[0].backgroundColor = sel ? p.focus : alpha(p.blue, 0.85);
    } else {
      for (const ds of c.data.datasets) {
        const d = ds as ChartDataset<"line"> & { type?: string };
        if ((c.config as { type?: string }).type === "line" && Array.isArray(d.pointRadius)) {
          const base = d.borderColor as string;
          d.pointRadius = layers.map((l) => (l.name === selectedLayer ? 6 : 2));
          d.pointBackgroundColor = layers.map((l) => (l.name === selectedLayer ? p.focus : base));
        } else if (d.label === t("weight std")) {
          (d as unknown as ChartDataset<"bar">).backgroundColor = layers.map((l) => (l.name === selectedLayer ? p.focus : alpha(p.orange, 0.75)));
        }
      }
    }
    c.update("none");
    if (c === fromChart && index >= 0) { showTooltip(c, index); c.update("none"); }
  }
  const ro = document.getElementById("readout");
  if (ro) ro.textContent = readout(layers[index]);
  const target = findingIndex !== undefined
    ? document.querySelector<HTMLElement>(`.finding[data-index="${findingIndex}"]`)
    : selectedLayer && !fromChart ? document.querySelector<HTMLElement>(`tr[data-layer="${CSS_escape(selectedLayer)}"]`) : null;
  target?.scrollIntoView({ block: "nearest" });
}

function CSS_escape(s: string): string {
  return typeof window.CSS?.escape === "function" ? window.CSS.escape(s) : s.replace(/["\\]/g, "\\$&");
}

/**
 * Renders the current report again (theme change, axis toggle) and puts back the scroll position and
 * the keyboard focus, so a theme switch does not lose the reader's place.
 */
function rerender(): void {
  if (!current) return;
  const active = document.activeElement as HTMLElement | null;
  const focusKey = active?.id ? `#${CSS_escape(active.id)}`
    : active?.dataset.layer !== undefined && active.tagName === "TR" ? `tr[data-layer="${CSS_escape(active.dataset.layer)}"]`
      : active?.dataset.layer !== undefined && active.classList.contains("hist-cell") ? `.hist-cell[data-layer="${CSS_escape(active.dataset.layer)}"]` : null;
  const x = window.scrollX, y = window.scrollY;
  render(current.report, current.context);
  window.scrollTo(x, y);
  if (focusKey) {
    const f = document.querySelector<HTMLElement>(focusKey);
    if (f) { f.tabIndex = 0; f.focus({ preventScroll: true }); }
  }
}

function handle(m: ToWebview): void {
  switch (m.type) {
    case "report":
      current = { report: m.report, context: m.context };
      render(m.report, m.context);
      break;
    case "analyzing":
      if (!current) renderStatus(m.message || t("Analysing…"), true);
      else {
        document.getElementById("busy")?.remove();
        root().prepend(el("div", { id: "busy", class: "status", role: "status" }, custom("vscode-progress-ring"), el("span", {}, m.message)));
      }
      break;
    case "error":
      document.getElementById("busy")?.remove();
      if (!current) renderStatus(t("Analysis failed: {0}", m.message), false);
      else root().prepend(el("div", { id: "busy", class: "status error", role: "alert" }, t("Analysis failed: {0}", m.message)));
      break;
    case "highlight":
      selectedLayer = m.layer ?? null;
      applyHighlight(m.finding);
      break;
  }
}

/** VS Code changes the body's classes and data-vscode-theme-* attributes and the variables on <html> when the theme changes. */
function watchTheme(): void {
  let pending = 0;
  let last = JSON.stringify(palette());
  const check = (): void => {
    pending = 0;
    const now = JSON.stringify(palette());
    if (now === last) return;
    last = now;
    rerender();
  };
  const schedule = (): void => { if (!pending) pending = window.setTimeout(check, 30); };
  new MutationObserver(schedule).observe(document.body, { attributes: true, attributeFilter: ["class", "data-vscode-theme-id", "data-vscode-theme-kind", "data-vscode-theme-name"] });
  new MutationObserver(schedule).observe(document.documentElement, { attributes: true, attributeFilter: ["style", "class"] });
  window.matchMedia?.("(prefers-color-scheme: dark)").addEventListener?.("change", schedule);
}

function start(): void {
  loadBundle(document);
  installStyles();
  watchTheme();
  const embedded = document.getElementById("md-report");
  if (embedded?.textContent) {
    const data = JSON.parse(embedded.textContent) as { report: Report; context: ReportContext };
    current = data;
    render(data.report, data.context);
    return;
  }
  window.addEventListener("message", (e: MessageEvent<unknown>) => {
    if (isToWebview(e.data)) handle(e.data);
  });
  renderStatus(t("Waiting for the analysis…"), true);
  post({ type: "ready" });
}

start();
