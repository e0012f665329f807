// "Check Gradients": the seed's gradient checking of the generated backward graph, run by the
// engine's own CLI (`onnx-doctor gradcheck -f json`) in a child process, so onnxruntime never
// blocks the extension host; cancelling kills the child.
import { execFile } from "node:child_process";
import * as path from "node:path";
import * as vscode from "vscode";

/** What the CLI's JSON gives per checked tensor (a subset). */
interface TensorGrade {
  tensor: string;
  grade: "good" | "look closer" | "wrong" | "no gradient";
  difference: number | null;
}

export interface GradcheckSummary {
  precisionNote: string;
  checks: TensorGrade[];
  good: number;
  closer: number;
  wrong: number;
  /** Tensors with no gradient to compare (an op without a rule on the way to the loss). */
  noGradient: number;
}

/** A progress line of the CLI's stderr: `gradcheck <percent>% <message>`. */
const PROGRESS = /^gradcheck (\d{1,3})% (.*)$/;

/** Runs `gradcheck` on one model with progress and Cancel; resolves undefined when cancelled. */
export async function checkGradients(distDir: string, model: vscode.Uri, timeoutMs: number, log: vscode.LogOutputChannel): Promise<GradcheckSummary | undefined> {
  return vscode.window.withProgress({
    location: vscode.ProgressLocation.Notification, cancellable: true,
    title: vscode.l10n.t("Model Doctor: checking gradients of {0}", path.basename(model.fsPath)),
  }, (progress, token) => new Promise<GradcheckSummary | undefined>((resolve, reject) => {
    const child = execFile(process.execPath, [path.join(distDir, "cli.js"), "gradcheck", model.fsPath, "-f", "json"], {
      env: { ...process.env, ELECTRON_RUN_AS_NODE: "1" }, timeout: timeoutMs, maxBuffer: 64 << 20,
    }, (error, stdout, stderr) => {
      if (token.isCancellationRequested) return resolve(undefined);
      let parsed: { precisionNote: string; checks: TensorGrade[] } | undefined;
      try {
        parsed = JSON.parse(stdout) as { precisionNote: string; checks: TensorGrade[] };
      } catch {
        // The CLI prints one line on stderr when it cannot check the model (after its progress lines).
        const lines = stderr.trim().split("\n").filter((l) => l && !PROGRESS.test(l));
        const reason = error?.killed ? vscode.l10n.t("the gradient check took longer than {0} s and was stopped (setting modelDoctor.workerTimeoutSeconds)", Math.round(timeoutMs / 1000))
          : lines.pop() || (error ? error.message : "no output");
        return reject(new Error(reason.replace(/^onnx-doctor: /, "")));
      }
      const count = (g: TensorGrade["grade"]): number => parsed!.checks.filter((c) => c.grade === g).length;
      log.info(`gradient check of ${model.fsPath}: ${parsed.precisionNote}`);
      for (const c of parsed.checks) log.info(`  ${c.grade.padEnd(11)} ${c.tensor} difference ${c.difference}`);
      resolve({ precisionNote: parsed.precisionNote, checks: parsed.checks, good: count("good"), closer: count("look closer"), wrong: count("wrong"), noGradient: count("no gradient") });
    });
    // `gradcheck 40% tensor 7/15: ...` lines on stderr move the notification's bar.
    let shown = 0;
    let pending = "";
    child.stderr?.on("data", (chunk: Buffer | string) => {
      pending += chunk.toString();
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) {
        const m = PROGRESS.exec(line);
        if (!m) continue;
        const percent = Number(m[1]);
        progress.report({ message: m[2], increment: Math.max(0, percent - shown) });
        shown = Math.max(shown, percent);
      }
    });
    token.onCancellationRequested(() => child.kill("SIGKILL"));
  }));
}
