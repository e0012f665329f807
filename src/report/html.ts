import { randomBytes } from "node:crypto";
import { basename } from "node:path";
import type { Report } from "./types";

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

/** JSON for a <script type="application/json"> block: NaN/Infinity as null, and no `<` that could close the tag. */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === "number" && !Number.isFinite(v) ? null : v))
    .replace(/</g, "\\u003c").replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
}

export interface HtmlOptions {
  /**
   * The report app bundle (dist/webview.js, built from webview/main.ts): it renders the same
   * charts as the VS Code report from the embedded JSON. Without it the page shows the findings
   * table only.
   */
  script?: string;
  /** Shown in the title; defaults to the model's file name. */
  fileName?: string;
  generatedAt?: string;
  /**
   * Translations of the report UI's strings (an l10n bundle: English source string -> translation, as
   * vscode.l10n.bundle) and the page language; without them the page is in English.
   */
  l10n?: Record<string, string>;
  lang?: string;
}

/**
 * A standalone HTML report: one file, inline script and data, no network (a CSP forbids every
 * fetch), every model-provided string escaped. The static findings table is rendered server-side
 * and replaced by the interactive report when the script runs.
 */
export function toHtml(report: Report, options: HtmlOptions = {}): string {
  const nonce = randomBytes(16).toString("base64");
  const fileName = options.fileName ?? basename(report.model.path);
  const data = jsonForScript({ report, context: { fileName, untrusted: false, analyzedAt: options.generatedAt ?? new Date().toISOString() } });
  const rows = report.findings.map((f) =>
    `<tr><td>${escapeHtml(f.severity)}</td><td><code>${escapeHtml(f.category)}</code></td><td>${escapeHtml(f.layer ?? "")}</td><td>${escapeHtml(f.message)}</td><td>${escapeHtml(f.fix)}</td></tr>`).join("\n");
  const script = options.script ? options.script.replace(/<\/(script)/gi, "<\\/$1") : "";
  return `<!DOCTYPE html>
<html lang="${escapeHtml(options.lang ?? "en")}">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'nonce-${nonce}';">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="${escapeHtml(`${report.tool.name} ${report.tool.version}`)}">
<title>${escapeHtml(fileName)} — ONNX Model Doctor report</title>
<style>body{font-family:system-ui,sans-serif;background:#1e1e1e;color:#ccc;margin:0;padding:0 20px}table{border-collapse:collapse}td,th{border-bottom:1px solid #444;padding:3px 8px;text-align:left;vertical-align:top}</style>
</head>
<body>
<div id="app">
<h1>${escapeHtml(fileName)}</h1>
<p>${report.summary.errors} errors, ${report.summary.warnings} warnings, ${report.summary.infos} infos${report.probe.ran ? "" : " (static analysis only)"}</p>
<table><thead><tr><th>severity</th><th>category</th><th>layer</th><th>message</th><th>fix</th></tr></thead>
<tbody>
${rows}
</tbody></table>
</div>
<script type="application/json" id="md-report">${data}</script>
${options.l10n ? `<script type="application/json" id="md-l10n">${jsonForScript(options.l10n)}</script>\n` : ""}${script ? `<script nonce="${nonce}">${script}</script>` : ""}
</body>
</html>
`;
}
