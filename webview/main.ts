// The report UI, bundled for the browser (dist/webview.js). Runs in two hosts:
// - the VS Code custom editor (acquireVsCodeApi exists): the report arrives by message;
// - a standalone HTML export (src/report/html.ts): the report is in <script id="md-report" type="application/json">.
// Every model-provided string goes into the DOM through textContent/attributes, never as HTML.
// Every number may be null (NaN/Infinity through JSON) and is checked before use.
import {
  BarController, BarElement, CategoryScale, Chart, Filler, Legend, LinearScale, LineController, LineElement,
  LogarithmicScale, PointElement, Tooltip, type ChartConfiguration, type ChartDataset,
} from "chart.js";
import "@vscode-elements/elements/dist/vscode-badge/index.js";
import "@vscode-elements/elements/dist/vscode-button/index.js";
import "@vscode-elements/elements/dist/vscode-checkbox/index.js";
import "@vscode-elements/elements/dist/vscode-collapsible/index.js";
import "@vscode-elements/elements/dist/vscode-progress-ring/index.js";
import type { Finding, LayerReport, Report } from "../src/report/types";
import { isToWebview, type FromWebview, type ReportContext, type ToWebview } from "./protocol";
import { CSS } from "./styles";

Chart.register(BarController, BarElement, CategoryScale, Filler, Legend, LinearScale, LineController, LineElement, LogarithmicScale, PointElement, Tooltip);
Chart.defaults.animation = false;

interface VsCodeApi {
  postMessage(message: FromWebview): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode: VsCodeApi | undefined = typeof acquireVsCodeApi === "function" ? acquireVsCodeApi() : undefined;
const post = (m: FromWebview): void => vscode?.postMessage(m);

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
  return a >= 1e4 || a < 1e-3 ? n.toExponential(2) : n.toPrecision(digits).replace(/\.?0+$/, "");
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

function render(report: Report, context: ReportContext): void {
  destroyCharts();
  const r = root();
  r.replaceChildren();
  const s = report.summary ?? { errors: 0, warnings: 0, infos: 0 };
  const header = el("header", { class: "header" },
    el("h1", {}, context.fileName),
    el("div", { class: "meta" },
      `${report.model?.producer || "unknown producer"} · IR ${fmt(report.model?.irVersion)} · ${fmt(report.model?.parameterCount)} parameters · ${report.layers.length} layers · `,
      report.probe?.ran
        ? `probe: ${report.probe.batches} × batch ${report.probe.batchSize}${num(report.probe.seconds) !== null ? ` in ${fmt(report.probe.seconds)} s` : ""}`
        : "static analysis only"),
    el("div", { class: "badges" },
      custom("vscode-badge", { variant: "counter", class: "sev-error", title: "errors" }, String(s.errors)), el("span", {}, " errors "),
      custom("vscode-badge", { variant: "counter", class: "sev-warning", title: "warnings" }, String(s.warnings)), el("span", {}, " warnings "),
      custom("vscode-badge", { variant: "counter", class: "sev-info", title: "infos" }, String(s.infos)), el("span", {}, " infos")),
  );
  if (vscode) {
    const again = custom("vscode-button", { id: "reanalyze" }, "Analyze again");
    again.addEventListener("click", () => post({ type: "reanalyze", staticOnly: false }));
    const exp = custom("vscode-button", { id: "export", secondary: "" }, "Export…");
    exp.addEventListener("click", () => post({ type: "export" }));
    header.append(el("div", { class: "actions" }, again, " ", exp));
  }
  r.append(header);
  if (!report.probe?.ran) {
    r.append(el("p", { class: "notice", role: "note" },
      context.untrusted
        ? "This workspace is not trusted, so the model was not run: only its weights were checked. Trust the workspace to see activation statistics."
        : report.probe?.error ? `The probe could not run: ${report.probe.error}` : "Static analysis only: the model was not run, so there are no activation statistics."));
  }
  r.append(renderFindings(report.findings));
  r.append(renderCharts(report));
  r.append(renderLayerTable(report.layers));
  applyHighlight();
}

function renderFindings(findings: readonly Finding[]): HTMLElement {
  const section = el("section", { id: "findings", "aria-label": "Findings" }, el("h2", {}, `Findings (${findings.length})`));
  if (!findings.length) {
    section.append(el("p", { class: "empty" }, "No findings: nothing looks wrong with this model."));
    return section;
  }
  const list = el("ul", { class: "findings", role: "list" });
  findings.forEach((f, i) => {
    const evidence = Object.entries(f.evidence ?? {}).map(([k, v]) => `${k}: ${Array.isArray(v) ? `[${v.map((x) => fmt(x)).join(", ")}]` : typeof v === "number" || v === null ? fmt(v) : String(v)}`).join(" · ");
    const item = el("li", { class: `finding sev-${f.severity}`, tabindex: "0", role: "button", "data-index": String(i), "data-layer": f.layer ?? "", "aria-label": `${f.severity} ${f.category} ${f.layer ?? ""}` },
      el("div", { class: "finding-head" },
        el("span", { class: `sev sev-${f.severity}` }, f.severity),
        el("code", { class: "category" }, f.category),
        f.layer ? el("span", { class: "layer" }, f.layer) : null),
      el("div", { class: "message" }, f.message),
      evidence ? el("div", { class: "evidence" }, evidence) : null,
      el("div", { class: "fix" }, el("strong", {}, "Fix: "), f.fix));
    const select = (): void => {
      selectedLayer = f.layer ?? null;
      applyHighlight(i);
      post({ type: "selected", layer: selectedLayer });
    };
    item.addEventListener("click", select);
    item.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); select(); }
    });
    list.append(item);
  });
  section.append(list);
  return section;
}

function chartBox(id: string, title: string, note?: string): { box: HTMLElement; canvas: HTMLCanvasElement } {
  const canvas = el("canvas", { id, role: "img", "aria-label": title });
  const box = el("figure", { class: "chart" }, el("figcaption", {}, title), el("div", { class: "chart-box" }, canvas), note ? el("p", { class: "note" }, note) : null);
  return { box, canvas };
}

function baseOptions(p: ReturnType<typeof palette>, yTitle: string, log = false): ChartConfiguration["options"] {
  return {
    responsive: true, maintainAspectRatio: false,
    interaction: { mode: "index", intersect: false },
    plugins: { legend: { labels: { color: p.fg, boxWidth: 12 } }, tooltip: { enabled: true } },
    scales: {
      x: { ticks: { color: p.fg, autoSkip: true, maxRotation: 60 }, grid: { color: p.grid } },
      y: {
        type: log ? "logarithmic" : "linear", title: { display: true, text: yTitle, color: p.fg }, grid: { color: p.grid },
        ticks: { color: p.fg, ...(log ? { callback: (v: number | string) => { const n = Number(v); return Number.isFinite(n) && Math.abs(Math.log10(n) - Math.round(Math.log10(n))) < 1e-6 ? fmt(n) : ""; } } : {}) },
      },
    },
    onClick: (_e, elements) => {
      const idx = elements[0]?.index;
      const layers = current?.report.layers ?? [];
      if (idx !== undefined && layers[idx]) {
        selectedLayer = layers[idx].name;
        applyHighlight();
        post({ type: "selected", layer: selectedLayer });
      }
    },
  };
}

function pointStyle(layers: readonly LayerReport[], base: string, p: ReturnType<typeof palette>) {
  return {
    pointRadius: layers.map((l) => (l.name === selectedLayer ? 6 : 2)),
    pointBackgroundColor: layers.map((l) => (l.name === selectedLayer ? p.focus : base)),
  };
}

function renderCharts(report: Report): HTMLElement {
  const p = palette();
  const layers = report.layers;
  const labels = layers.map(layerLabel);
  const section = el("section", { id: "charts", "aria-label": "Charts" }, el("h2", {}, "Layers"));
  const grid = el("div", { class: "chart-grid" });
  section.append(grid);
  const hasActivations = layers.some((l) => l.activation);

  if (hasActivations) {
    const mean = layers.map((l) => num(l.activation?.mean));
    const std = layers.map((l) => num(l.activation?.std));
    const upper = mean.map((m, i) => (m !== null && std[i] !== null ? m + std[i]! : null));
    const lower = mean.map((m, i) => (m !== null && std[i] !== null ? m - std[i]! : null));
    const a = chartBox("chart-activation", "Activation mean ± std per layer");
    grid.append(a.box);
    charts.push(new Chart(a.canvas, {
      type: "line",
      data: {
        labels,
        datasets: [
          { label: "mean + std", data: upper, borderColor: alpha(p.blue, 0.4), backgroundColor: alpha(p.blue, 0.18), pointRadius: 0, fill: "+1", borderWidth: 1 },
          { label: "mean − std", data: lower, borderColor: alpha(p.blue, 0.4), pointRadius: 0, fill: false, borderWidth: 1 },
          { label: "mean", data: mean, borderColor: p.blue, backgroundColor: p.blue, borderWidth: 2, ...pointStyle(layers, p.blue, p) },
        ],
      },
      options: baseOptions(p, "activation"),
    }));
    const b = chartBox("chart-activation-std", "Activation std per layer (log scale)", "A straight downward line means the signal shrinks by a constant factor per layer (vanishing); upward means exploding.");
    grid.append(b.box);
    charts.push(new Chart(b.canvas, {
      type: "line",
      data: { labels, datasets: [{ label: "std", data: std.map((v) => (v !== null && v > 0 ? v : null)), borderColor: p.purple, backgroundColor: p.purple, borderWidth: 2, ...pointStyle(layers, p.purple, p) }] },
      options: baseOptions(p, "std", true),
    }));
  }

  const wl = layers.filter((l) => l.weight);
  if (wl.length) {
    const c = chartBox("chart-weights", "Weight std vs He / Xavier expected std");
    grid.append(c.box);
    const ds: ChartDataset<"bar" | "line", (number | null)[]>[] = [
      { type: "bar", label: "weight std", data: layers.map((l) => num(l.weight?.std)), backgroundColor: layers.map((l) => (l.name === selectedLayer ? p.focus : alpha(p.orange, 0.75))) },
      { type: "line", label: "He √(2/fan_in)", data: layers.map((l) => num(l.weight?.expectedStd?.he)), borderColor: p.red, backgroundColor: p.red, pointRadius: 2, borderDash: [4, 3], spanGaps: false },
      { type: "line", label: "Xavier √(2/(fan_in+fan_out))", data: layers.map((l) => num(l.weight?.expectedStd?.xavier)), borderColor: p.green, backgroundColor: p.green, pointRadius: 2, borderDash: [2, 2] },
    ];
    charts.push(new Chart(c.canvas, { type: "bar", data: { labels, datasets: ds as ChartDataset<"bar", (number | null)[]>[] }, options: baseOptions(p, "std") }));
  }

  if (hasActivations) {
    const d = chartBox("chart-dead", "Dead / saturated / zero fraction per layer");
    grid.append(d.box);
    charts.push(new Chart(d.canvas, {
      type: "bar",
      data: {
        labels,
        datasets: [
          { label: "dead units", data: layers.map((l) => { const u = num(l.activation?.units); const dd = num(l.activation?.deadUnits); return u && dd !== null ? dd / u : null; }), backgroundColor: alpha(p.red, 0.8) },
          { label: "saturated", data: layers.map((l) => num(l.activation?.saturatedFraction)), backgroundColor: alpha(p.yellow, 0.8) },
          { label: "zero values", data: layers.map((l) => num(l.activation?.zeroFraction)), backgroundColor: alpha(p.blue, 0.6) },
        ],
      },
      options: { ...baseOptions(p, "fraction"), scales: { ...baseOptions(p, "fraction")!.scales, y: { min: 0, max: 1, title: { display: true, text: "fraction", color: p.fg }, ticks: { color: p.fg }, grid: { color: p.grid } } } },
    }));
    section.append(renderHistograms(layers, p));
  }
  return section;
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

function renderHistograms(layers: readonly LayerReport[], p: ReturnType<typeof palette>): HTMLElement {
  const withHist = layers.filter((l) => l.activation?.histogram && num(l.activation.histogram.lo) !== null && num(l.activation.histogram.hi) !== null);
  const section = el("section", { id: "histograms", "aria-label": "Activation histograms" });
  const toggle = custom("vscode-checkbox", sharedHistogramAxis ? { checked: "", id: "shared-axis" } : { id: "shared-axis" }, "Same x-axis for every layer");
  toggle.addEventListener("change", () => {
    sharedHistogramAxis = !sharedHistogramAxis;
    if (current) render(current.report, current.context);
  });
  section.append(el("h2", {}, "Activation distribution per layer"), el("p", { class: "note" },
    "Each panel is the distribution of one layer's outputs on the probe. With a shared x-axis, a distribution that narrows layer after layer means vanishing activations; one that piles up at ±1 (tanh) or at 0 (ReLU) means saturated or dead units."), toggle);
  if (!withHist.length) return section;
  let gLo = Infinity, gHi = -Infinity;
  for (const l of withHist) { gLo = Math.min(gLo, l.activation!.histogram.lo); gHi = Math.max(gHi, l.activation!.histogram.hi); }
  const m = Math.max(Math.abs(gLo), Math.abs(gHi));
  if (gLo < 0 && gHi > 0) { gLo = -m; gHi = m; }
  const bins = 41;
  const grid = el("div", { class: "hist-grid" });
  section.append(grid);
  const shown = withHist.slice(0, 96);
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
    const canvas = el("canvas", { class: "hist", "data-layer": l.name, role: "img", "aria-label": `activation histogram of ${l.name}` });
    const sel = l.name === selectedLayer;
    const fig = el("figure", { class: `hist-cell${sel ? " selected" : ""}`, "data-layer": l.name },
      el("figcaption", {}, el("span", { class: "hist-name" }, layerLabel(l)), el("span", { class: "hist-std" }, ` ${l.activationFunction ?? l.op} · std ${fmt(l.activation?.std)}`)),
      el("div", { class: "hist-box" }, canvas));
    grid.append(fig);
    charts.push(new Chart(canvas, {
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
    }));
  }
  if (withHist.length > shown.length) section.append(el("p", { class: "note" }, `${withHist.length - shown.length} more layers not shown.`));
  return section;
}

function renderLayerTable(layers: readonly LayerReport[]): HTMLElement {
  const section = el("section", { id: "layers", "aria-label": "Layer table" }, el("h2", {}, "Layer table"));
  const table = el("table", { class: "layers" });
  table.append(el("thead", {}, el("tr", {}, ...["#", "layer", "op", "activation", "weight std", "Xavier", "He", "act. mean", "act. std", "dead", "saturated"].map((h) => el("th", { scope: "col" }, h)))));
  const body = el("tbody");
  for (const l of layers) {
    const a = l.activation;
    const tr = el("tr", { "data-layer": l.name, tabindex: "0" },
      el("td", {}, String(l.id)), el("td", {}, layerLabel(l)), el("td", {}, l.op), el("td", {}, l.activationFunction ?? ""),
      el("td", {}, fmt(l.weight?.std)), el("td", {}, fmt(l.weight?.expectedStd?.xavier)), el("td", {}, fmt(l.weight?.expectedStd?.he)),
      el("td", {}, fmt(a?.mean)), el("td", {}, fmt(a?.std)),
      el("td", {}, a && a.deadUnits !== null && a.units !== null ? `${fmt(a.deadUnits)}/${fmt(a.units)}` : ""),
      el("td", {}, a ? fmt(a.saturatedFraction) : ""));
    tr.addEventListener("click", () => { selectedLayer = l.name; applyHighlight(); post({ type: "selected", layer: l.name }); });
    body.append(tr);
  }
  table.append(body);
  section.append(table);
  return section;
}

/** Marks the selected layer everywhere: findings, table rows, histogram cells, chart points. */
function applyHighlight(findingIndex?: number): void {
  const p = palette();
  document.querySelectorAll<HTMLElement>("[data-layer]").forEach((e) => {
    e.classList.toggle("selected", !!selectedLayer && e.dataset.layer === selectedLayer);
  });
  document.querySelectorAll<HTMLElement>(".finding").forEach((e) => e.classList.toggle("active", findingIndex !== undefined && e.dataset.index === String(findingIndex)));
  const layers = current?.report.layers ?? [];
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
        } else if (d.label === "weight std") {
          (d as unknown as ChartDataset<"bar">).backgroundColor = layers.map((l) => (l.name === selectedLayer ? p.focus : alpha(p.orange, 0.75)));
        }
      }
    }
    c.update("none");
  }
  const target = findingIndex !== undefined
    ? document.querySelector<HTMLElement>(`.finding[data-index="${findingIndex}"]`)
    : selectedLayer ? document.querySelector<HTMLElement>(`tr[data-layer="${CSS_escape(selectedLayer)}"]`) : null;
  target?.scrollIntoView({ block: "nearest" });
}

function CSS_escape(s: string): string {
  return typeof window.CSS?.escape === "function" ? window.CSS.escape(s) : s.replace(/["\\]/g, "\\$&");
}

function handle(m: ToWebview): void {
  switch (m.type) {
    case "report":
      current = { report: m.report, context: m.context };
      render(m.report, m.context);
      break;
    case "analyzing":
      if (!current) renderStatus(m.message || "Analysing…", true);
      else {
        document.getElementById("busy")?.remove();
        root().prepend(el("div", { id: "busy", class: "status", role: "status" }, custom("vscode-progress-ring"), el("span", {}, m.message)));
      }
      break;
    case "error":
      document.getElementById("busy")?.remove();
      if (!current) renderStatus(`Analysis failed: ${m.message}`, false);
      else root().prepend(el("div", { id: "busy", class: "status error", role: "alert" }, `Analysis failed: ${m.message}`));
      break;
    case "highlight":
      selectedLayer = m.layer ?? null;
      applyHighlight(m.finding);
      break;
  }
}

function start(): void {
  installStyles();
  new MutationObserver(() => { if (current) render(current.report, current.context); }).observe(document.body, { attributes: true, attributeFilter: ["class"] });
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
  renderStatus("Waiting for the analysis…", true);
  post({ type: "ready" });
}

start();
