import * as path from "node:path";
import * as vscode from "vscode";
import type { Finding, Severity } from "../src/report/types";
import type { ReportStore, StoredReport } from "./store";

export type FindingsNode =
  | { kind: "model"; stored: StoredReport }
  | { kind: "severity"; stored: StoredReport; severity: Severity; findings: { finding: Finding; index: number }[] }
  | { kind: "finding"; stored: StoredReport; finding: Finding; index: number };

const SEVERITIES: Severity[] = ["error", "warning", "info"];
const SEV_LABEL: Record<Severity, (n: number) => string> = {
  error: (n) => vscode.l10n.t("Errors ({0})", n),
  warning: (n) => vscode.l10n.t("Warnings ({0})", n),
  info: (n) => vscode.l10n.t("Info ({0})", n),
};
const SEV_ICON: Record<Severity, vscode.ThemeIcon> = {
  error: new vscode.ThemeIcon("error", new vscode.ThemeColor("problemsErrorIcon.foreground")),
  warning: new vscode.ThemeIcon("warning", new vscode.ThemeColor("problemsWarningIcon.foreground")),
  info: new vscode.ThemeIcon("info", new vscode.ThemeColor("problemsInfoIcon.foreground")),
};

/** Sidebar tree: models → findings grouped by severity → one row per finding (its layer). */
export class FindingsTree implements vscode.TreeDataProvider<FindingsNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<FindingsNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly sub: vscode.Disposable;

  constructor(private readonly store: ReportStore) {
    this.sub = store.onDidChange(() => this.changed.fire(undefined));
  }

  getChildren(node?: FindingsNode): FindingsNode[] {
    if (!node) return this.store.all().map((stored) => ({ kind: "model", stored }));
    if (node.kind === "model") {
      const indexed = node.stored.report.findings.map((finding, index) => ({ finding, index }));
      return SEVERITIES.map((severity) => ({ kind: "severity" as const, stored: node.stored, severity, findings: indexed.filter((x) => x.finding.severity === severity) }))
        .filter((g) => g.findings.length > 0);
    }
    if (node.kind === "severity") return node.findings.map(({ finding, index }) => ({ kind: "finding", stored: node.stored, finding, index }));
    return [];
  }

  getTreeItem(node: FindingsNode): vscode.TreeItem {
    if (node.kind === "model") {
      const s = node.stored.report.summary;
      const item = new vscode.TreeItem(path.basename(node.stored.uri.fsPath), vscode.TreeItemCollapsibleState.Expanded);
      item.resourceUri = node.stored.uri;
      item.description = node.stored.staticOnly
        ? vscode.l10n.t("{0} errors, {1} warnings (static)", s.errors, s.warnings)
        : vscode.l10n.t("{0} errors, {1} warnings", s.errors, s.warnings);
      item.tooltip = node.stored.uri.fsPath;
      item.contextValue = "model";
      item.iconPath = s.errors ? SEV_ICON.error : s.warnings ? SEV_ICON.warning : new vscode.ThemeIcon("pass");
      item.id = `model:${node.stored.uri.toString()}`;
      item.command = { command: "modelDoctor.openReport", title: vscode.l10n.t("Open Report"), arguments: [node.stored.uri] };
      return item;
    }
    if (node.kind === "severity") {
      const item = new vscode.TreeItem(SEV_LABEL[node.severity](node.findings.length), node.severity === "info" ? vscode.TreeItemCollapsibleState.Collapsed : vscode.TreeItemCollapsibleState.Expanded);
      item.iconPath = SEV_ICON[node.severity];
      item.id = `sev:${node.stored.uri.toString()}:${node.severity}`;
      return item;
    }
    const f = node.finding;
    const item = new vscode.TreeItem(f.layer ? `${f.layer}` : f.category, vscode.TreeItemCollapsibleState.None);
    item.description = `${f.category} — ${f.message}`;
    const md = new vscode.MarkdownString();
    md.appendText(`${f.severity} ${f.category}${f.layer ? ` ${f.layer}` : ""}\n\n${f.message}\n\n${vscode.l10n.t("Fix: {0}", f.fix)}`);
    item.tooltip = md;
    item.iconPath = SEV_ICON[f.severity];
    item.contextValue = "finding";
    item.id = `finding:${node.stored.uri.toString()}:${node.index}`;
    item.command = { command: "modelDoctor.revealFinding", title: vscode.l10n.t("Reveal in Report"), arguments: [node.stored.uri, node.index] };
    return item;
  }

  dispose(): void {
    this.sub.dispose();
    this.changed.dispose();
  }
}
