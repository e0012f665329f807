// The extension's entry point: the only layer that imports `vscode` (DESIGN). The engine runs in a
// forked worker (dist/worker.js); this file wires commands, lint on save, the Problems
// diagnostics, the Findings tree, the status bar and the report custom editor.
import * as path from "node:path";
import * as vscode from "vscode";
import type { Report } from "../src/report/types";
import { readSettings } from "./config";
import { Controller } from "./controller";
import { ReportEditorProvider, VIEW_TYPE } from "./editor";
import { Engine } from "./engine";
import { EXTENSIONS, pickFormat, render, type ExportFormat } from "./exporter";
import { ReportStore } from "./store";
import { checkGradients } from "./gradcheck";
import { FindingsTree, type FindingsNode } from "./tree";
import { isEngineTempFile } from "../src/runtime/temp-files";

/** What activate() returns: used by the integration tests (and available to other extensions). */
export interface ModelDoctorApi {
  readonly store: ReportStore;
  readonly tree: FindingsTree;
  readonly controller: Controller;
  readonly editor: ReportEditorProvider;
  readonly engine: Engine;
  analyze(uri: vscode.Uri, options?: { staticOnly?: boolean; inputFile?: string }): Promise<Report | undefined>;
  treeChildren(node?: FindingsNode): FindingsNode[];
}

// The engine's own short-lived copies next to big models must not trigger lint on save.
const isOnnx = (uri: vscode.Uri | undefined): uri is vscode.Uri =>
  !!uri && uri.scheme === "file" && uri.fsPath.toLowerCase().endsWith(".onnx") && !isEngineTempFile(uri.fsPath);

export function activate(context: vscode.ExtensionContext): ModelDoctorApi {
  const log = vscode.window.createOutputChannel("Model Doctor", { log: true });
  const dist = path.join(context.extensionPath, "dist");
  const engine = new Engine(dist, { info: (m) => log.info(m), warn: (m) => log.warn(m), error: (m) => log.error(m) });
  const store = new ReportStore();
  const diagnostics = vscode.languages.createDiagnosticCollection("modelDoctor");
  const controller = new Controller(engine, store, diagnostics, log);
  const tree = new FindingsTree(store);
  const exportReport = async (arg?: vscode.Uri, format?: ExportFormat, target?: vscode.Uri): Promise<vscode.Uri | undefined> => {
    const uri = await resolveModel(arg);
    if (!uri) return undefined;
    const report = store.get(uri)?.report ?? (await controller.analyze(uri, { reason: "command", notify: true }));
    if (!report) return undefined;
    format ??= await pickFormat();
    if (!format) return undefined;
    target ??= await vscode.window.showSaveDialog({
      defaultUri: vscode.Uri.file(uri.fsPath.replace(/\.onnx$/i, `.doctor.${EXTENSIONS[format]}`)),
      filters: { [format.toUpperCase()]: [EXTENSIONS[format]] },
    });
    if (!target) return undefined;
    const folder = vscode.workspace.getWorkspaceFolder(uri)?.uri.fsPath;
    await vscode.workspace.fs.writeFile(target, Buffer.from(render(report, format, dist, folder), "utf8"));
    log.info(`exported ${format} report of ${uri.fsPath} to ${target.fsPath}`);
    return target;
  };
  const editor = new ReportEditorProvider(context, controller, (uri) => exportReport(uri));
  log.info(`Model Doctor activated (workspace ${vscode.workspace.isTrusted ? "trusted" : "untrusted: static analysis only"})`);

  async function resolveModel(arg?: unknown): Promise<vscode.Uri | undefined> {
    if (arg instanceof vscode.Uri && isOnnx(arg)) return arg;
    if (editor.active) return editor.active;
    const tabUri = (vscode.window.tabGroups.activeTabGroup.activeTab?.input as { uri?: vscode.Uri } | undefined)?.uri;
    if (isOnnx(tabUri)) return tabUri;
    if (isOnnx(vscode.window.activeTextEditor?.document.uri)) return vscode.window.activeTextEditor!.document.uri;
    const files = await vscode.workspace.findFiles("**/*.onnx", "**/node_modules/**", 200);
    if (files.length) {
      const pick = await vscode.window.showQuickPick(files.map((f) => ({ label: vscode.workspace.asRelativePath(f), uri: f })), { title: vscode.l10n.t("Which model?") });
      return pick?.uri;
    }
    const open = await vscode.window.showOpenDialog({ canSelectMany: false, filters: { [vscode.l10n.t("ONNX model")]: ["onnx"] } });
    return open?.[0];
  }

  const openReport = async (uri: vscode.Uri): Promise<void> => {
    await vscode.commands.executeCommand("vscode.openWith", uri, VIEW_TYPE);
  };

  context.subscriptions.push(
    log, store, diagnostics, controller, tree, { dispose: () => engine.dispose() },
    vscode.window.registerCustomEditorProvider(VIEW_TYPE, editor, { webviewOptions: { retainContextWhenHidden: true }, supportsMultipleEditorsPerDocument: true }),
    vscode.window.createTreeView("modelDoctor.findings", { treeDataProvider: tree, showCollapseAll: true }),
    vscode.commands.registerCommand("modelDoctor.analyze", async (arg?: vscode.Uri) => {
      const uri = await resolveModel(arg);
      if (!uri) return undefined;
      const report = await controller.analyze(uri, { reason: "command", notify: true });
      if (report && editor.openPanels(uri) === 0) await openReport(uri);
      return report;
    }),
    vscode.commands.registerCommand("modelDoctor.analyzeWithData", async (arg?: vscode.Uri, data?: vscode.Uri) => {
      const uri = await resolveModel(arg);
      if (!uri) return undefined;
      if (!vscode.workspace.isTrusted) {
        void vscode.window.showWarningMessage(vscode.l10n.t("Model Doctor: probe data needs a trusted workspace; running static analysis only."));
        return controller.analyze(uri, { reason: "command", notify: true, staticOnly: true });
      }
      data ??= (await vscode.window.showOpenDialog({
        title: vscode.l10n.t("Probe data for the model's inputs"), canSelectMany: false, defaultUri: vscode.Uri.file(path.dirname(uri.fsPath)),
        filters: { [vscode.l10n.t("NumPy array (.npy for the first input, .npz keyed by input name)")]: ["npy", "npz"] },
      }))?.[0];
      if (!data) return undefined;
      const report = await controller.analyze(uri, { reason: "command", notify: true, inputFile: data.fsPath });
      if (report && editor.openPanels(uri) === 0) await openReport(uri);
      return report;
    }),
    vscode.commands.registerCommand("modelDoctor.checkGradients", async (arg?: vscode.Uri) => {
      const uri = await resolveModel(arg);
      if (!uri) return undefined;
      try {
        const result = await checkGradients(dist, uri, readSettings(uri).workerTimeoutMs, log);
        if (!result) return undefined;
        // The counts and the precision fit a notification; why float64 did not run and the per-tensor table go to the log.
        const precision = result.precisionNote.split(":")[0];
        const summary = result.noGradient
          ? vscode.l10n.t("Gradient check of {0} ({1}): {2} good, {3} look closer, {4} wrong, {5} with no gradient to check.",
            path.basename(uri.fsPath), precision, result.good, result.closer, result.wrong, result.noGradient)
          : vscode.l10n.t("Gradient check of {0} ({1}): {2} good, {3} look closer, {4} wrong.",
            path.basename(uri.fsPath), precision, result.good, result.closer, result.wrong);
        const showLog = vscode.l10n.t("Show Log");
        void (result.wrong || result.noGradient ? vscode.window.showWarningMessage(summary, showLog) : vscode.window.showInformationMessage(summary, showLog))
          .then((choice) => { if (choice === showLog) log.show(); });
        return result;
      } catch (e) {
        void vscode.window.showErrorMessage(vscode.l10n.t("Model Doctor: the gradient check failed: {0}", e instanceof Error ? e.message : String(e)));
        return undefined;
      }
    }),
    vscode.commands.registerCommand("modelDoctor.exportReport", exportReport),
    vscode.commands.registerCommand("modelDoctor.clearDiagnostics", () => {
      controller.clearAll();
      log.info("diagnostics cleared");
    }),
    vscode.commands.registerCommand("modelDoctor.showLog", () => log.show()),
    vscode.commands.registerCommand("modelDoctor.openReport", async (arg?: vscode.Uri) => {
      const uri = await resolveModel(arg);
      if (uri) await openReport(uri);
    }),
    vscode.commands.registerCommand("modelDoctor.revealFinding", async (uri: vscode.Uri, index: number) => {
      const f = store.get(uri)?.report.findings[index];
      editor.highlight(uri, f?.layer, index); // queued until the webview is ready
      await openReport(uri); // opens the report, or brings the open one to the front
      editor.highlight(uri, f?.layer, index);
    }),
  );

  // ---- lint on save: created/changed .onnx files are re-analysed (debounced; a newer change cancels the older run)
  const timers = new Map<string, NodeJS.Timeout>();
  const schedule = (uri: vscode.Uri): void => {
    const settings = readSettings(uri);
    if (!settings.lintOnSave || !isOnnx(uri)) return;
    const key = uri.toString();
    clearTimeout(timers.get(key));
    controller.cancel(uri);
    timers.set(key, setTimeout(() => {
      timers.delete(key);
      void controller.analyze(uri, { reason: "save", staticOnly: settings.staticOnlyOnSave });
    }, settings.debounceMs));
  };
  const watcher = vscode.workspace.createFileSystemWatcher("**/*.onnx");
  context.subscriptions.push(
    watcher,
    watcher.onDidCreate(schedule),
    watcher.onDidChange(schedule),
    watcher.onDidDelete((uri) => {
      clearTimeout(timers.get(uri.toString()));
      timers.delete(uri.toString());
      controller.forget(uri);
      log.info(`${uri.fsPath} deleted: diagnostics cleared`);
    }),
    { dispose: () => { for (const t of timers.values()) clearTimeout(t); } },
    vscode.workspace.onDidGrantWorkspaceTrust(() => {
      controller.updateStatus();
      for (const s of store.all()) if (s.staticOnly) void controller.analyze(s.uri, { reason: "startup" });
    }),
  );

  // ---- first look: lint the workspace's models in the background, one at a time (no effect on start-up time)
  if (readSettings().lintOnStartup) {
    const startup = setTimeout(() => {
      void (async () => {
        const files = await vscode.workspace.findFiles("**/*.onnx", "**/node_modules/**", 20);
        for (const f of files) {
          if (store.get(f) || controller.isRunning(f)) continue;
          const s = readSettings(f);
          await controller.analyze(f, { reason: "startup", staticOnly: s.staticOnlyOnSave });
        }
      })();
    }, 1000);
    context.subscriptions.push({ dispose: () => clearTimeout(startup) });
  }

  return {
    store, tree, controller, editor, engine,
    analyze: (uri, o = {}) => controller.analyze(uri, { reason: "command", ...o }),
    treeChildren: (node) => tree.getChildren(node),
  };
}

export function deactivate(): void {}
