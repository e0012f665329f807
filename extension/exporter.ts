import { readFileSync } from "node:fs";
import * as path from "node:path";
import * as vscode from "vscode";
import { toHtml } from "../src/report/html";
import { toMarkdown } from "../src/report/markdown";
import { toSarif } from "../src/report/sarif";
import { toJson, type Report } from "../src/report/types";

export type ExportFormat = "json" | "markdown" | "sarif" | "html";
export const EXTENSIONS: Record<ExportFormat, string> = { json: "json", markdown: "md", sarif: "sarif", html: "html" };

/** Serialises a report in one of the export formats (HTML embeds the report app bundle). */
export function render(report: Report, format: ExportFormat, distDir: string, baseDir?: string): string {
  switch (format) {
    case "json": return toJson(report) + "\n";
    case "markdown": return toMarkdown(report);
    case "sarif": return toSarif(report, { baseDir });
    case "html": return toHtml(report, { script: readFileSync(path.join(distDir, "webview.js"), "utf8"), l10n: vscode.l10n.bundle, lang: vscode.env.language });
  }
}

export async function pickFormat(): Promise<ExportFormat | undefined> {
  const items: (vscode.QuickPickItem & { format: ExportFormat })[] = [
    { label: "HTML", description: vscode.l10n.t("standalone report with charts (no network)"), format: "html" },
    { label: "JSON", description: vscode.l10n.t("the full report, schema version 1"), format: "json" },
    { label: "Markdown", description: vscode.l10n.t("findings and layer table"), format: "markdown" },
    { label: "SARIF 2.1.0", description: vscode.l10n.t("for code scanning in CI"), format: "sarif" },
  ];
  return (await vscode.window.showQuickPick(items, { title: vscode.l10n.t("Export Model Doctor report as") }))?.format;
}
