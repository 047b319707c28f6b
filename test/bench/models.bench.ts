// SD 1.5-sized UNet on the CPU, with random weights in the real single-file layout
// (written once to .cache/models/sd15-random by tools/random-model.ts):
// - first load (empty cache: checkpoint open + ONNX emission + external data + session)
//   vs second load (same cache, new process); goal second ≤ 25% of first
// - one forward at 256² and 512² (latents 32² and 64²), batch 2, timestep 500: median
//   seconds, GFLOP/s from the graph's own FLOP count, % of the MatMul ceiling (goal ≥ 50%),
//   peak RSS — for the plain UNet and for the gated-LoRA UNet with rank-1 zero branches
// Every load and every forward configuration runs in its own child process, so times start
// from a fresh process and peak RSS belongs to one configuration. The compiled models go to
// a temporary cache folder (about 14 GB: two UNet variants, each with onnxruntime's
// optimised copy), removed at the end. Run: npm run bench -- models (about 5 minutes on 2
// quiet cores; the first run also writes the 4 GB random model, about 20 s).
//
// The MatMul ceiling is graph.bench.ts's 2048² MatMul with both operands as inputs (B is
// packed on every run, and inputs/outputs are copied from and to JavaScript); layers with
// constant, prepacked weights can run faster than it, so "% of ceiling" may pass 100%.
//
// FLOPs (countFlops): MatMul 2·M·N·K per batch entry, Gemm 2·M·N·K, Conv
// 2·out_elements·(C_in/group)·kh·kw; everything else (norms, softmax, elementwise, bias
// adds) is not counted, so GFLOP/s slightly understates the work done.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isEntryPoint } from '../../engine/entry-point.ts';
import { evalDim } from '../../engine/graph/dim.ts';
import * as G from '../../engine/graph/index.ts';
import { loraFeeds } from '../../engine/lora/gated.ts';
import { compileUNet, unetGraph } from '../../engine/models/compiled.ts';
import { gaussianNoise } from '../../engine/schedulers/noise.ts';
import { openCheckpoint } from '../../engine/weights/checkpoint.ts';
import { DEFAULT_RANDOM_MODEL_DIR } from '../../tools/make-random-model.ts';
import { SD15_RANDOM_MODEL, verifyRandomModel, writeRandomModel } from '../../tools/random-model.ts';
import { fixtureDir, repoRoot } from '../fixtures.ts';
import { matmulCeiling } from './graph.bench.ts';
import { median, type Report } from './harness.ts';

const BATCH = 2;
const TIMESTEP = 500;

/** Multiply–add FLOPs of MatMul, Gemm and Conv nodes with the graph's symbols bound. */
export function countFlops(graph: G.Graph, bindings: ReadonlyMap<string, number>): number {
  const size = (shape: readonly G.Dim[]) =>
    shape.reduce<number>((acc, d) => {
      const v = evalDim(d, bindings);
      if (v === undefined) throw new Error(`countFlops: dimension ${G.dimStr(d)} is not bound`);
      return acc * v;
    }, 1);
  const dim = (d: G.Dim) => size([d]);
  let flops = 0;
  for (const node of graph.nodes) {
    const [a, b] = node.inputs;
    const out = node.outputs[0];
    switch (node.op.name) {
      case 'MatMul':
        flops += 2 * size(out.shape) * dim(a.shape[a.rank - 1]);
        break;
      case 'Gemm': {
        const { transA } = node.attrs as { transA: boolean };
        flops += 2 * size(out.shape) * dim(transA ? a.shape[0] : a.shape[1]);
        break;
      }
      case 'Conv': {
        // weight [out, in/group, kh, kw]: each output element takes in/group·kh·kw multiply–adds
        flops += 2 * size(out.shape) * size(b.shape.slice(1));
        break;
      }
    }
  }
  return flops;
}

/** Binds B, H and W; every other symbol (the LoRA ranks R…) to 1. */
function bindingsFor(graph: G.Graph, latent: number): Map<string, number> {
  const bindings = new Map<string, number>();
  for (const input of graph.inputs) {
    for (const d of input.shape) {
      if (typeof d === 'number') continue;
      for (const [symbol] of d.factors) bindings.set(symbol, 1);
    }
  }
  bindings.set('B', BATCH).set('H', latent).set('W', latent);
  return bindings;
}

// ---------------------------------------------------------------- child processes

interface LoadTask {
  kind: 'load';
  modelPath: string;
  cacheDir: string;
  lora: boolean;
}

interface ForwardTask {
  kind: 'forward';
  modelPath: string;
  cacheDir: string;
  lora: boolean;
  /** image side in pixels; the latent is side / 8 */
  size: number;
  runs: number;
}

type Task = LoadTask | ForwardTask;

interface LoadResult {
  openMs: number;
  emitMs: number;
  sessionMs: number;
  totalMs: number;
  reusedCache: boolean;
  reusedOptimized: boolean;
  maxRssBytes: number;
}

interface ForwardResult {
  load: LoadResult;
  ceilingGflops: number;
  firstMs: number;
  runMs: number[];
  flops: number;
  finite: boolean;
  maxRssBytes: number;
}

const maxRssBytes = () => process.resourceUsage().maxRSS * 1024;

async function load(task: LoadTask | ForwardTask) {
  const t0 = performance.now();
  const ck = openCheckpoint(task.modelPath);
  const t1 = performance.now();
  const net = await compileUNet(ck, { lora: task.lora, cacheDir: task.cacheDir });
  const result: LoadResult = {
    openMs: t1 - t0,
    emitMs: net.model.stats.emitMs,
    sessionMs: net.model.stats.sessionMs,
    totalMs: performance.now() - t0,
    reusedCache: net.model.stats.reusedCache,
    reusedOptimized: net.model.stats.reusedOptimized,
    maxRssBytes: maxRssBytes(),
  };
  return { ck, net, result };
}

async function forward(task: ForwardTask): Promise<ForwardResult> {
  // The ceiling is measured in the same process, just before and after the forwards it is compared with.
  const before = await matmulCeiling();
  const { ck, net, result } = await load(task);
  const latent = task.size / 8;
  const c = ck.unet.config;
  const feeds: Record<string, G.HostTensor> = {
    sample: G.hostTensor('float32', gaussianNoise(1, BATCH * c.in_channels * latent ** 2), [
      BATCH,
      c.in_channels,
      latent,
      latent,
    ]),
    timestep: G.hostTensor('float32', new Float32Array(BATCH).fill(TIMESTEP), [BATCH]),
    context: G.hostTensor('float32', gaussianNoise(2, BATCH * 77 * c.cross_attention_dim), [
      BATCH,
      77,
      c.cross_attention_dim,
    ]),
    ...(net.slots ? loraFeeds(net.slots, [], BATCH) : {}),
  };
  const once = async () => {
    const t0 = performance.now();
    const out = await net.model.run(feeds, ['noise']);
    return { ms: performance.now() - t0, noise: out.noise.data as Float32Array };
  };
  const first = await once(); // also the warm-up: pages the weights in
  const runMs: number[] = [];
  for (let i = 0; i < task.runs; i++) runMs.push((await once()).ms);
  await net.model.release();
  const after = await matmulCeiling();
  const { graph } = unetGraph(ck, 'unet', { lora: task.lora });
  return {
    load: result,
    ceilingGflops: (before.ours + after.ours) / 2,
    firstMs: first.ms,
    runMs,
    flops: countFlops(graph, bindingsFor(graph, latent)),
    finite: first.noise.every(Number.isFinite),
    maxRssBytes: maxRssBytes(),
  };
}

const RESULT_MARK = 'models.bench result: ';

async function child(task: Task): Promise<void> {
  let result: LoadResult | ForwardResult;
  if (task.kind === 'load') {
    const loaded = await load(task);
    await loaded.net.model.release();
    result = loaded.result;
  } else result = await forward(task);
  process.stdout.write(`${RESULT_MARK}${JSON.stringify(result)}\n`);
}

/** Runs a task in `node --import tsx` on this file and returns its result. */
function inChild<T>(task: Task): Promise<T> {
  return new Promise((resolve, reject) => {
    const proc = spawn(
      process.execPath,
      ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', JSON.stringify(task)],
      { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    proc.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    proc.on('error', reject);
    proc.on('close', (code) => {
      const line = out.split('\n').find((l) => l.startsWith(RESULT_MARK));
      if (code !== 0 || !line)
        reject(new Error(`${task.kind} child exited with ${code}: ${out.slice(-2000)}`));
      else resolve(JSON.parse(line.slice(RESULT_MARK.length)) as T);
    });
  });
}

// ---------------------------------------------------------------- the benchmark

const seconds = (ms: number) => ms / 1000;
const gib = (bytes: number) => bytes / 2 ** 30;

function ensureModel(report: Report): string {
  const t0 = performance.now();
  const model = writeRandomModel(DEFAULT_RANDOM_MODEL_DIR, SD15_RANDOM_MODEL, {
    tokenizerDir: join(fixtureDir(), 'model', 'tokenizer'),
  });
  const ck = openCheckpoint(model.path);
  verifyRandomModel(ck, SD15_RANDOM_MODEL);
  const s = seconds(performance.now() - t0);
  console.log(
    `${model.written ? 'wrote' : 'reused'} ${model.path} (${gib(model.bytes).toFixed(2)} GiB) in ${s.toFixed(1)} s`,
  );
  report(model.written ? 'models.random_model.write' : 'models.random_model.check', s, 's');
  return model.path;
}

async function loads(report: Report, modelPath: string, cacheDir: string): Promise<void> {
  const task: LoadTask = { kind: 'load', modelPath, cacheDir, lora: false };
  const first = await inChild<LoadResult>(task);
  const second = await inChild<LoadResult>(task);
  if (first.reusedCache || !second.reusedCache)
    throw new Error('the load cache did not behave: check cacheDir');
  report('models.unet.first_load', seconds(first.totalMs), 's');
  report('models.unet.first_load.emit', seconds(first.emitMs), 's');
  report('models.unet.first_load.session', seconds(first.sessionMs), 's');
  report('models.unet.second_load', seconds(second.totalMs), 's');
  report('models.unet.second_load.session', seconds(second.sessionMs), 's');
  report('models.unet.second_over_first_load', second.totalMs / first.totalMs, 'x', '≤ 0.25');
}

async function forwards(report: Report, modelPath: string, cacheDir: string): Promise<void> {
  const plain = new Map<number, number>();
  for (const size of [256, 512]) {
    for (const lora of [false, true]) {
      const runs = size === 256 ? 5 : 3;
      const r = await inChild<ForwardResult>({ kind: 'forward', modelPath, cacheDir, lora, size, runs });
      if (!r.finite) throw new Error(`the ${size}² forward gave non-finite values`);
      const name = `models.${lora ? 'unet_lora' : 'unet'}.${size}px_batch${BATCH}`;
      const ms = median(r.runMs);
      const gflops = r.flops / ms / 1e6;
      report(`${name}.forward`, seconds(ms), 's');
      report(`${name}.first_forward`, seconds(r.firstMs), 's');
      report(`${name}.gflop`, r.flops / 1e9, 'GFLOP');
      report(`${name}.gflops`, gflops, 'GFLOP/s');
      report(`${name}.matmul_ceiling`, r.ceilingGflops, 'GFLOP/s');
      report(`${name}.of_matmul_ceiling`, (100 * gflops) / r.ceilingGflops, '%', '≥ 50%');
      report(`${name}.peak_rss`, gib(r.maxRssBytes), 'GiB');
      if (lora) report(`${name}.over_plain`, ms / plain.get(size)!, 'x');
      else plain.set(size, ms);
    }
  }
}

export async function run(report: Report): Promise<void> {
  const modelPath = ensureModel(report);
  const cacheDir = mkdtempSync(join(tmpdir(), 'clora-models-bench-'));
  try {
    await loads(report, modelPath, cacheDir);
    await forwards(report, modelPath, cacheDir);
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
  }
}

if (isEntryPoint(import.meta.url)) {
  const at = process.argv.indexOf('--child');
  if (at >= 0) await child(JSON.parse(process.argv[at + 1]) as Task);
  else {
    const { printReport } = await import('./harness.ts');
    await run(printReport);
  }
}
