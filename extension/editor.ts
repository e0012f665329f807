import { randomBytes } from "node:crypto";
import * as path from "node:path";
import * as vscode from "vscode";
import { isFromWebview, type ToWebview } from "../webview/protocol";
import { jsonForScript } from "../src/report/html";
import type { Controller } from "./controller";
import type { StoredReport } from "./store";

export const VIEW_TYPE = "modelDoctor.report";

class ModelDocument implements vscode.CustomDocument {
  constructor(readonly uri: vscode.Uri) {}
  dispose(): void {}
}

/**
 * Read-only custom editor for *.onnx: a webview with the report. The model is analysed when the
 * editor opens (unless a report is already known) and whenever the store gets a new report for it.
 */
export class ReportEditorProvider implements vscode.CustomReadonlyEditorProvider<ModelDocument> {
  private readonly panels = new Map<string, Set<vscode.WebviewPanel>>();
  private activeUri: vscode.Uri | undefined;
  private readonly pending = new Map<string, ToWebview>();

  constructor(private readonly context: vscode.ExtensionContext, private readonly controller: Controller, private readonly onExport: (uri: vscode.Uri) => unknown) {
    context.subscriptions.push(controller.store.onDidChange((uri) => {
      if (uri) { const s = controller.store.get(uri); if (s) this.postTo(uri, this.reportMessage(s)); }
    }));
    context.subscriptions.push(controller.onRun((e) => {
      if (e.kind === "progress") this.postTo(e.uri, { type: "analyzing", fraction: e.fraction, message: e.message });
      else if (e.kind === "failed") this.postTo(e.uri, { type: "error", message: e.message });
    }));
  }

  /** The model of the report editor that is active, if any. */
  get active(): vscode.Uri | undefined {
    return this.activeUri;
  }

  openPanels(uri: vscode.Uri): number {
    return this.panels.get(uri.toString())?.size ?? 0;
  }

  openCustomDocument(uri: vscode.Uri): ModelDocument {
    return new ModelDocument(uri);
  }

  resolveCustomEditor(document: ModelDocument, panel: vscode.WebviewPanel): void {
    const uri = document.uri;
    const key = uri.toString();
    const set = this.panels.get(key) ?? new Set();
    set.add(panel);
    this.panels.set(key, set);
    this.activeUri = uri;
    const dist = vscode.Uri.joinPath(this.context.extensionUri, "dist");
    panel.webview.options = { enableScripts: true, localResourceRoots: [dist] };
    panel.webview.html = this.html(panel.webview, path.basename(uri.fsPath));
    panel.onDidChangeViewState(() => { if (panel.active) this.activeUri = uri; });
    panel.onDidDispose(() => {
      set.delete(panel);
      if (!set.size) this.panels.delete(key);
      if (this.activeUri?.toString() === key && !set.size) this.activeUri = undefined;
    });
    panel.webview.onDidReceiveMessage((m: unknown) => {
      if (!isFromWebview(m)) return;
      switch (m.type) {
        case "ready": {
          const s = this.controller.store.get(uri);
          if (s) void panel.webview.postMessage(this.reportMessage(s));
          else if (!this.controller.isRunning(uri)) void this.controller.analyze(uri, { reason: "editor", notify: false });
          else void panel.webview.postMessage({ type: "analyzing", fraction: 0, message: vscode.l10n.t("Analysing…") } satisfies ToWebview);
          const p = this.pending.get(key);
          if (p) { this.pending.delete(key); void panel.webview.postMessage(p); }
          break;
        }
        case "reanalyze":
          void this.controller.analyze(uri, { reason: "command", notify: true, staticOnly: m.staticOnly });
          break;
        case "export":
          void this.onExport(uri);
          break;
        case "selected":
          this.controller.log.debug(`report ${path.basename(uri.fsPath)}: selected layer ${m.layer ?? "(none)"}`);
          break;
      }
    });
  }

  /** Sends a highlight to the report of `uri` (queued until the webview is ready). */
  highlight(uri: vscode.Uri, layer: string | undefined, finding: number | undefined): void {
    const msg: ToWebview = { type: "highlight", layer, finding };
    if (!this.postTo(uri, msg)) this.pending.set(uri.toString(), msg);
    else this.pending.set(uri.toString(), msg); // also replay on "ready" for a panel that is still loading
  }

  private postTo(uri: vscode.Uri, m: ToWebview): boolean {
    const set = this.panels.get(uri.toString());
    if (!set?.size) return false;
    for (const p of set) void p.webview.postMessage(m);
    return true;
  }

  private reportMessage(s: StoredReport): ToWebview {
    return { type: "report", report: s.report, context: { fileName: path.basename(s.uri.fsPath), untrusted: !vscode.workspace.isTrusted, analyzedAt: s.analyzedAt.toISOString() } };
  }

  private html(webview: vscode.Webview, title: string): string {
    const nonce = randomBytes(16).toString("base64");
    const script = webview.asWebviewUri(vscode.Uri.joinPath(this.context.extensionUri, "dist", "webview.js"));
    const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
    return `<!DOCTYPE html>
<html lang="${esc(vscode.env.language)}">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src ${webview.cspSource} data:; font-src ${webview.cspSource}; style-src ${webview.cspSource} 'nonce-${nonce}'; script-src 'nonce-${nonce}';">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>${esc(title)}</title>
</head>
<body>
<main id="app"></main>
<script type="application/json" id="md-l10n">${jsonForScript(vscode.l10n.bundle ?? {})}</script>
<script nonce="${nonce}" src="${script.toString()}"></script>
</body>
</html>`;
  }
}
