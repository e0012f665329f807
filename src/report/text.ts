import { fmt } from "../rules/rule";
import { lessonLines } from "./lessons-text";
import { printableReport } from "./printable";
import type { Finding, GradientCoverageReport, Report } from "./types";

/** The terminal report: findings first (what a user acts on), then the per-layer table. */
export function toText(modelReport: Report, options: { color?: boolean } = {}): string {
  const report = printableReport(modelReport);
  const paint = (code: number, s: string): string => (options.color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const sev = (f: Finding): string => (f.severity === "error" ? paint(31, "error  ") : f.severity === "warning" ? paint(33, "warning") : paint(36, "info   "));
  const lines: string[] = [];
  const m = report.model;
  lines.push(`${m.path}: ${report.layers.length} layers, ${m.parameterCount.toLocaleString("en-US")} parameters, IR ${m.irVersion}, opset ${m.opsets[""] ?? "?"}${m.producer ? `, ${m.producer}` : ""}`);
  const p = report.probe;
  const dims = Object.entries(p.dims).map(([k, v]) => `${k}=${v}`).join(", ");
  if (p.ran) lines.push(`probe: ${p.batches} batch(es) of ${p.batchSize}, seed ${p.seed}; inputs ${p.inputs.map((i) => `${i.name}[${i.shape.join(",")}] ${i.dtype} (${i.source})`).join(", ")}${dims ? `; dims ${dims}` : ""}${p.seconds !== undefined ? `; ${fmt(p.seconds)} s` : ""}${p.notes?.length ? `; ${p.notes.join("; ")}` : ""}`);
  if (!p.ran) lines.push(p.error ? `probe: failed (${p.error})` : "probe: not run (static analysis only)");
  else if (p.loss) lines.push(`gradients: loss ${p.loss.name}${p.loss.value !== undefined ? ` = ${fmt(p.loss.value)}` : ""} (${p.loss.definition})${p.gradientCoverage ? `; ${p.gradientCoverage.supported} of ${p.gradientCoverage.layers} layers` : ""}${gradientBatchesNote(p.gradientCoverage, p.batches)}`);
  else lines.push("gradients: not computed (forward probe only)");
  if (m.weightsLookTrained) lines.push("weights look trained (heavy tails or uneven unit norms), so initialisation-scale checks are skipped");
  if (p.branches?.length) lines.push(`probe followed the branch its inputs take: ${p.branches.join(", ")}`);
  const hidden = report.layers.filter((l) => l.inSubgraph && !l.activation).length;
  if (hidden) lines.push(`${hidden} layer(s) inside If/Loop bodies the probe did not run were checked from their weights only`);
  lines.push("");
  if (report.findings.length === 0) lines.push("No problems found.");
  // The same rule on many layers (a whole net of constant weights) reads better as one entry.
  const byRule = new Map<string, Finding[]>();
  for (const f of report.findings) byRule.set(`${f.severity} ${f.ruleId}`, [...(byRule.get(`${f.severity} ${f.ruleId}`) ?? []), f]);
  const shown = new Set<Finding>();
  for (const f of report.findings) {
    const group = byRule.get(`${f.severity} ${f.ruleId}`)!;
    if (group.length > MAX_REPEATS && !group.slice(0, MAX_REPEATS - 1).includes(f)) {
      if (!shown.has(group[0])) continue;
      const rest = group.slice(MAX_REPEATS - 1);
      lines.push(`${sev(f)}  ${f.category}  …and ${rest.length} more layers: ${rest.map((r) => r.layer ?? r.node).slice(0, 12).join(", ")}${rest.length > 12 ? ", …" : ""}`);
      shown.delete(group[0]);
      continue;
    }
    shown.add(f);
    lines.push(`${sev(f)}  ${f.category}  ${f.layer ?? f.node ?? ""}`.trimEnd());
    lines.push(`  ${f.message}`);
    lines.push(`  Fix: ${f.fix}`);
  }
  lines.push("");
  const lessons = lessonLines(report);
  if (lessons.length) lines.push(...lessons, "");
  lines.push(layerTable(report).join("\n"));
  if (report.layers.some((l) => l.gradient)) lines.push("grad.l2 = ||dL/d(layer output)||_2, dW/W = ||dL/dW||_2 / ||W||_2, both for the probe's loss; he/xavier = the std those initialisations would give");
  const s = report.summary;
  lines.push("");
  lines.push(`${s.errors} error(s), ${s.warnings} warning(s), ${s.infos} info`);
  return lines.join("\n") + "\n";
}

/** Findings of one rule shown in full before the rest are listed by layer name. */
const MAX_REPEATS = 4;

/** Fixed-width per-layer table of weight and activation statistics. */
function layerTable(report: Report): string[] {
  const rows = [["#", "layer", "op", "act", "w.mean", "w.std", "he", "xavier", "a.mean", "a.std", "zero%", "sat%", "dead", "grad.l2", "dW/W"]];
  for (const l of report.layers) {
    const w = l.weight;
    const a = l.activation;
    rows.push([
      String(l.id), l.name, l.op, l.activationFunction ?? "", w ? fmt(w.mean) : "", w ? fmt(w.std) : "", w?.expectedStd ? fmt(w.expectedStd.he) : "",
      w?.expectedStd ? fmt(w.expectedStd.xavier) : "", a ? fmt(a.mean) : "", a ? fmt(a.std) : "", a ? fmt(100 * a.zeroFraction) : "",
      a?.saturatedFraction != null ? fmt(100 * a.saturatedFraction) : "", a?.deadUnits != null ? `${a.deadUnits}/${a.units}` : "",
      l.gradient ? fmt(l.gradient.l2) : "", w?.gradient ? fmt(w.gradient.ratioToWeight) : "",
    ]);
  }
  const widths = rows[0].map((_, c) => Math.min(40, Math.max(...rows.map((r) => r[c].length))));
  return rows.map((r) => r.map((cell, c) => (cell.length > widths[c] ? `${cell.slice(0, widths[c] - 1)}…` : cell.padEnd(widths[c]))).join("  ").trimEnd());
}

/** "; from 1 of 2 batches (...)" when fewer batches carried gradients than ran. */
export function gradientBatchesNote(coverage: GradientCoverageReport | undefined, batches: number): string {
  const used = coverage?.batches;
  if (used === undefined || used >= batches || coverage?.error) return "";
  return `; loss and gradients from ${used} of ${batches} batches (${coverage?.stoppedEarly ?? "the short last batch of the file gets activations only: the backward graph is built for the first batch's shapes"})`;
}
