import { fmt } from "../rules/rule";
import { lessonLines } from "./lessons-text";
import { printableReport } from "./printable";
import type { Report } from "./types";

/** Markdown with every model-provided string escaped, so names cannot inject markup. */
export function toMarkdown(modelReport: Report): string {
  const report = printableReport(modelReport);
  // Escape what can start markup (emphasis, code, links, tables, HTML); leave ordinary punctuation.
  const esc = (s: string): string => s
    .replace(/&/g, "&amp;").replace(/</g, "&lt;")
    .replace(/[\\`*_[\]|]/g, (c) => `\\${c}`).replace(/\r?\n/g, " ");
  const out: string[] = [];
  const m = report.model;
  out.push(`# ONNX Model Doctor report: ${esc(m.path)}`, "");
  out.push(`${report.layers.length} layers, ${m.parameterCount.toLocaleString("en-US")} parameters, IR ${m.irVersion}, opset ${m.opsets[""] ?? "?"}, producer ${esc(m.producer || "unknown")}, sha256 \`${m.sha256.slice(0, 16)}…\``, "");
  const p = report.probe;
  out.push(p.ran ? `Probe: ${p.batches} batch(es) of ${p.batchSize}, seed ${p.seed}; inputs ${p.inputs.map((i) => `${esc(i.name)} [${i.shape.join(", ")}] ${i.dtype} (${i.source})`).join("; ")}${p.notes?.length ? `; ${esc(p.notes.join("; "))}` : ""}.` : p.error ? `Probe failed: ${esc(p.error)}` : "Probe not run (static analysis only).", "");
  const s = report.summary;
  const count = (n: number, word: string): string => `${n} ${word}${n === 1 ? "" : "s"}`;
  out.push(`## Findings (${count(s.errors, "error")}, ${count(s.warnings, "warning")}, ${s.infos} info)`, "");
  if (!report.findings.length) out.push("No problems found.", "");
  for (const f of report.findings) {
    out.push(`- **${f.severity}** \`${f.category}\`${f.layer ? ` in \`${f.layer.replace(/`/g, "'")}\`` : ""}: ${esc(f.message)}`);
    out.push(`  - Fix: ${esc(f.fix)}`);
  }
  const lessons = lessonLines(report);
  if (lessons.length) out.push("", "## Architecture and data", "", ...lessons.map((l) => `- ${esc(l.trim())}`));
  out.push("", "## Layers", "", "| # | layer | op | activation | weight std | He std | Xavier std | act. mean | act. std | zero % | saturated % | dead units | ‖∂L/∂y‖₂ | ‖∂L/∂W‖ / ‖W‖ |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (const l of report.layers) {
    const w = l.weight;
    const a = l.activation;
    out.push(`| ${l.id} | ${esc(l.name)} | ${esc(l.op)} | ${l.activationFunction ?? ""} | ${w ? fmt(w.std) : ""} | ${w?.expectedStd ? fmt(w.expectedStd.he) : ""} | ${w?.expectedStd ? fmt(w.expectedStd.xavier) : ""} | ${a ? fmt(a.mean) : ""} | ${a ? fmt(a.std) : ""} | ${a ? fmt(100 * a.zeroFraction) : ""} | ${a?.saturatedFraction != null ? fmt(100 * a.saturatedFraction) : ""} | ${a?.deadUnits != null ? `${a.deadUnits}/${a.units}` : ""} | ${l.gradient ? fmt(l.gradient.l2) : ""} | ${w?.gradient ? fmt(w.gradient.ratioToWeight) : ""} |`);
  }
  return out.join("\n") + "\n";
}
