// `npm run bench` part for the gradient engine (issue 4): forward + backward + all statistics in
// one onnxruntime run, against a plain forward run and against PyTorch's forward + backward of the
// same architecture (Debian's torch, when /usr/bin/python3 has it), in the same process run.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { findLayers } from "../src/graph/layers";
import { instrumentStatistics, tapOutputNames } from "../src/instrument/stats-graph";
import { loadModel } from "../src/onnx/load";
import { planProbe } from "../src/probe/inputs";
import { GradientProbe } from "../src/probe/gradients";
import { tapsFor } from "../src/probe/run";
import { RuntimeSession } from "../src/runtime/session";
import { resnet18 } from "./bench-models";

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const TORCH_SCRIPT = `
import json, sys, time, torch, torchvision
torch.manual_seed(0)
torch.set_num_threads(int(sys.argv[1]))
m = torchvision.models.resnet18().eval()
x = torch.randn(8, 3, 224, 224)
v = torch.randn(8, 1000)
def fwd():
    with torch.no_grad():
        m(x)
def fwd_bwd():
    m.zero_grad(set_to_none=True)
    m(x).backward(v)
for f in (fwd, fwd_bwd):
    f()
times = {"forward": [], "forward_backward": []}
for _ in range(int(sys.argv[2])):
    for name, f in (("forward", fwd), ("forward_backward", fwd_bwd)):
        t = time.perf_counter(); f(); times[name].append(time.perf_counter() - t)
print(json.dumps({k: sorted(v)[len(v) // 2] * 1000 for k, v in times.items()} | {"torch": torch.__version__}))
`;

export async function gradientOverhead(out: string, runs = 7): Promise<void> {
  const path = join(out, "resnet18.onnx");
  if (!existsSync(path)) writeFileSync(path, resnet18());
  const model = loadModel(path);
  const layers = findLayers(model);
  const plan = planProbe(model, { batchSize: 8, batches: 1, seed: 1 });
  const threads = 1;
  const prepared = performance.now();
  const gradients = await GradientProbe.prepare(model, layers, plan, { loss: "random", intraOpThreads: threads });
  const { bytes, outputs } = instrumentStatistics(model, tapsFor(layers), gradients.additions);
  const buildMs = performance.now() - prepared;
  const fetch = [...outputs.flatMap(tapOutputNames), ...gradients.additions.outputs];
  const plain = await RuntimeSession.open(readFileSync(path), new Map(), { intraOpThreads: threads });
  const opened = performance.now();
  const full = await RuntimeSession.open(bytes, new Map(), { intraOpThreads: threads });
  const openMs = performance.now() - opened;
  const inputs = plan.feeds(0);
  const feeds = { ...inputs, ...gradients.feeds(0, inputs) };
  await plain.run(inputs, ["logits"]);
  gradients.add(await full.run(feeds, fetch));
  const tPlain: number[] = [];
  const tFull: number[] = [];
  for (let i = 0; i < runs; i++) {
    let t = performance.now();
    await plain.run(inputs, ["logits"]);
    tPlain.push(performance.now() - t);
    t = performance.now();
    await full.run(feeds, fetch);
    tFull.push(performance.now() - t);
  }
  await plain.release();
  await full.release();
  const summary = gradients.summary();
  const ratio = median(tFull) / median(tPlain);
  console.log(`resnet18 forward + backward + statistics (${layers.length} layers, ${summary.coverage.supported} with gradients, ${gradients.additions.nodes.length} added nodes, ${fetch.length} outputs), batch 8, ${threads} thread:`);
  console.log(`  building shapes + backward graph ${(buildMs / 1000).toFixed(2)} s, session creation ${(openMs / 1000).toFixed(2)} s (once per analysis)`);
  console.log(`  plain forward                   median ${median(tPlain).toFixed(0)} ms`);
  console.log(`  forward + backward + statistics median ${median(tFull).toFixed(0)} ms`);
  console.log(`  ratio = ${ratio.toFixed(2)}x  (target <= 3.5x) ${ratio <= 3.5 ? "OK" : "MISSED"}`);

  const torch = spawnSync("/usr/bin/python3", ["-c", TORCH_SCRIPT, String(threads), String(runs)], { encoding: "utf8", timeout: 600_000 });
  if (torch.status !== 0) {
    console.log(`  PyTorch comparison skipped: /usr/bin/python3 with torch and torchvision is not available (${(torch.stderr || String(torch.error ?? "")).trim().split("\n").pop()})`);
    return;
  }
  const t = JSON.parse(torch.stdout) as { forward: number; forward_backward: number; torch: string };
  const vsTorch = median(tFull) / t.forward_backward;
  console.log(`  PyTorch ${t.torch} (torchvision resnet18, eval-mode BatchNorm, ${threads} thread): forward ${t.forward.toFixed(0)} ms, forward + backward ${t.forward_backward.toFixed(0)} ms`);
  console.log(`  ours / PyTorch forward + backward = ${vsTorch.toFixed(2)}  (target <= 1.0) ${vsTorch <= 1.0 ? "OK" : "MISSED"}`);
}
