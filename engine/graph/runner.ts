// Compiles IR graphs into onnxruntime sessions and runs them with named, typed inputs.
// Sessions are cached by model key and options and live until their last user releases
// them (onnxruntime's memory grows over repeated create/release cycles).

import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { arch, cpus } from 'node:os';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { type Dim, dimStr, evalDim, isStatic, shapeStr } from './dim.ts';
import { type DType, zeros } from './dtype.ts';
import {
  BUNDLE_ENTRY,
  type EmitOptions,
  type EmittedModel,
  emitBundle,
  emitModel,
  type ValueSpec,
} from './emit.ts';
import { type Graph, GraphError } from './graph.ts';

export type Provider = 'cpu' | 'cuda';
export type OptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';

export interface RunnerOptions extends EmitOptions {
  provider?: Provider;
  deviceId?: number;
  /** threads inside one op; 0 lets onnxruntime choose */
  intraOpThreads?: number;
  interOpThreads?: number;
  optimization?: OptimizationLevel;
  /**
   * onnxruntime's CPU memory arena (default on). Off, every large buffer goes back to the
   * system when freed, so peak memory follows the live values instead of the arena's growth.
   */
  memoryArena?: boolean;
  /**
   * Let onnxruntime repack constant weights for its matrix kernels (default on). Off, weights
   * stay where they were loaded (mapped from the cached model file) instead of being copied
   * once per kernel layout: a graph that uses a weight forwards and in its VJP keeps one copy.
   */
  prepackWeights?: boolean;
  /**
   * Let onnxruntime's CPU optimiser rewrite convolutions into its blocked (NCHWc) layout
   * (default on). The rewrite keeps a reordered copy of each convolution's weight; a graph
   * whose VJP also reads the weights (ConvTranspose) then holds both copies, so gradient
   * graphs turn it off.
   */
  blockedLayout?: boolean;
}

export type HostTensor = ort.Tensor;

/** Wraps host data as a tensor for feeds. */
export function hostTensor(
  dtype: DType,
  data: Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array | Uint16Array | boolean[],
  dims: readonly number[],
): HostTensor {
  return new ort.Tensor(dtype, data as never, dims);
}

export interface CompileStats {
  emitMs: number;
  sessionMs: number;
  reusedCache: boolean;
  /** whether onnxruntime's optimised copy of a cached model was loaded instead of optimising again */
  reusedOptimized: boolean;
  weightBytes: number;
  nodeCount: number;
}

interface CachedSession {
  session: Promise<ort.InferenceSession>;
  users: number;
}

const sessions = new Map<string, CachedSession>();

/** How a graph of a bundle is reached in the bundle's session. */
interface BundleRoute {
  scope: string;
  /** the entry switch, and an empty tensor for each input of the bundle's other graphs */
  fixed: Record<string, HostTensor>;
}

export class CompiledModel {
  private released = false;

  constructor(
    readonly name: string,
    readonly key: string,
    readonly inputs: readonly ValueSpec[],
    readonly outputs: readonly ValueSpec[],
    private readonly session: ort.InferenceSession,
    private readonly cacheKey: string,
    readonly stats: CompileStats,
    private readonly route?: BundleRoute,
  ) {}

  /** Runs the model; `outputNames` picks a subset of outputs (default: all). */
  async run(
    feeds: Record<string, HostTensor>,
    outputNames?: readonly string[],
  ): Promise<Record<string, HostTensor>> {
    if (this.released) throw new GraphError(`model '${this.name}' was released; compile it again`);
    this.check(feeds);
    const wanted = outputNames ?? this.outputs.map((o) => o.name);
    for (const n of wanted) {
      if (!this.outputs.some((o) => o.name === n)) {
        throw new GraphError(
          `model '${this.name}' has no output '${n}' (outputs: ${this.outputs.map((o) => o.name).join(', ')})`,
        );
      }
    }
    const route = this.route;
    if (!route) return (await this.session.run(feeds, wanted as string[])) as Record<string, HostTensor>;
    const routed: Record<string, HostTensor> = { ...route.fixed };
    for (const [name, t] of Object.entries(feeds)) routed[`${route.scope}.${name}`] = t;
    const out = await this.session.run(
      routed,
      wanted.map((n) => `${route.scope}.${n}`),
    );
    return Object.fromEntries(wanted.map((n) => [n, out[`${route.scope}.${n}`] as HostTensor]));
  }

  /** Checks names, dtypes and shapes of the feeds, binding symbolic dims consistently. */
  check(feeds: Record<string, HostTensor>): Map<string, number> {
    const describe = (s: ValueSpec) => `${s.dtype} ${shapeStr(s.shape)}`;
    for (const key of Object.keys(feeds)) {
      if (!this.inputs.some((i) => i.name === key)) {
        throw new GraphError(
          `model '${this.name}' has no input '${key}'; its inputs are ${this.inputs.map((i) => `${i.name} ${describe(i)}`).join(', ')}`,
        );
      }
    }
    const bindings = new Map<string, { value: number; from: string }>();
    const values = new Map<string, number>();
    const deferred: [ValueSpec, number, Dim, number][] = [];
    for (const spec of this.inputs) {
      const t = feeds[spec.name];
      if (!t)
        throw new GraphError(`model '${this.name}': input '${spec.name}' (${describe(spec)}) is missing`);
      if (t.type !== spec.dtype) {
        throw new GraphError(
          `input '${spec.name}' must be ${spec.dtype}, got ${t.type} (expected ${describe(spec)})`,
        );
      }
      if (t.dims.length !== spec.shape.length) {
        throw new GraphError(
          `input '${spec.name}' must have rank ${spec.shape.length} ${shapeStr(spec.shape)}, got [${t.dims.join(',')}]`,
        );
      }
      spec.shape.forEach((d, axis) => {
        const got = t.dims[axis];
        if (isStatic(d)) {
          if (d !== got) {
            throw new GraphError(
              `input '${spec.name}' axis ${axis} must be ${d}, got ${got} (expected ${shapeStr(spec.shape)}, got [${t.dims.join(',')}])`,
            );
          }
          return;
        }
        if (d.factors.length === 1 && d.factors[0][1] === 1) {
          const symbol = d.factors[0][0];
          const value = got / d.coef;
          const prev = bindings.get(symbol);
          if (prev && prev.value !== value) {
            throw new GraphError(
              `dimension ${symbol} is ${prev.value} from ${prev.from} but ${value} from input '${spec.name}' axis ${axis}`,
            );
          }
          if (!Number.isInteger(value)) {
            throw new GraphError(`input '${spec.name}' axis ${axis} (${dimStr(d)}) cannot be ${got}`);
          }
          bindings.set(symbol, { value, from: `input '${spec.name}' axis ${axis}` });
          values.set(symbol, value);
        } else deferred.push([spec, axis, d, got]);
      });
    }
    for (const [spec, axis, d, got] of deferred) {
      const want = evalDim(d, values);
      if (want !== undefined && want !== got) {
        throw new GraphError(`input '${spec.name}' axis ${axis} must be ${dimStr(d)} = ${want}, got ${got}`);
      }
    }
    return values;
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    const entry = sessions.get(this.cacheKey);
    if (!entry) return;
    entry.users -= 1;
    if (entry.users === 0) {
      sessions.delete(this.cacheKey);
      await (await entry.session).release();
    }
  }
}

function sessionOptions(o: RunnerOptions): ort.InferenceSession.SessionOptions {
  const provider = o.provider ?? 'cpu';
  return {
    executionProviders:
      provider === 'cuda' ? [{ name: 'cuda', deviceId: o.deviceId ?? 0 } as never] : ['cpu'],
    graphOptimizationLevel: o.optimization ?? 'all',
    intraOpNumThreads: o.intraOpThreads ?? 0,
    interOpNumThreads: o.interOpThreads ?? 0,
    // onnxruntime's warnings (an unused constant it drops, say) say nothing a user can act on
    logSeverityLevel: 3,
    enableCpuMemArena: o.memoryArena ?? true,
    // a memory pattern is one block planned from an earlier run's peak: it only helps with the arena
    enableMemPattern: o.memoryArena ?? true,
    // onnxruntime's session configuration, nested by the keys' dotted parts
    extra: {
      session: o.prepackWeights === false ? { disable_prepacking: '1' } : {},
      optimization: o.blockedLayout === false ? { disable_specified_optimizers: 'NchwcTransformer' } : {},
    },
  };
}

/** Emits a graph and opens (or reuses) an onnxruntime session for it. */
export async function compile(graph: Graph, options: RunnerOptions = {}): Promise<CompiledModel> {
  const t0 = performance.now();
  const emitted = emitModel(graph, options);
  const t1 = performance.now();
  const { session, cacheKey, reusedOptimized } = await openSession(
    graph.name,
    emitted.key,
    emitted.model,
    options,
  );
  const stats = compileStats(emitted, t0, t1, reusedOptimized);
  return new CompiledModel(
    graph.name,
    emitted.key,
    emitted.inputs,
    emitted.outputs,
    session,
    cacheKey,
    stats,
  );
}

/**
 * Compiles graphs that read the same weights into one session holding one copy of them
 * (see emitBundle), and returns one model per graph, in order. Each runs only its own graph.
 */
export async function compileBundle(
  name: string,
  graphs: readonly Graph[],
  options: RunnerOptions = {},
): Promise<CompiledModel[]> {
  const t0 = performance.now();
  const emitted = emitBundle(name, graphs, options);
  const t1 = performance.now();
  // One user per graph: the session closes when the last of them is released. onnxruntime's
  // saved copy of a model with branches repeats the initializers its optimisers put inside
  // them, and then refuses to load: a bundle is optimised each time it is opened.
  const opened: Awaited<ReturnType<typeof openSession>>[] = [];
  for (const _ of graphs)
    opened.push(await openSession(name, emitted.key, emitted.model, options, { optimizedCopy: false }));
  const stats = compileStats(emitted, t0, t1, false);
  return emitted.entries.map((entry, i) => {
    const fixed: Record<string, HostTensor> = {
      [BUNDLE_ENTRY]: new ort.Tensor('int64', BigInt64Array.of(BigInt(i)), []),
    };
    emitted.entries.forEach((other, j) => {
      if (j !== i)
        for (const input of other.inputs) fixed[`${other.name}.${input.name}`] = emptyTensor(input);
    });
    const { session, cacheKey } = opened[i];
    return new CompiledModel(entry.name, emitted.key, entry.inputs, entry.outputs, session, cacheKey, stats, {
      scope: entry.name,
      fixed,
    });
  });
}

/** A tensor of the spec's dtype with no elements (symbolic axes 0), or zeros where every axis is fixed. */
function emptyTensor(spec: ValueSpec): HostTensor {
  const dims = spec.shape.map((d) => (isStatic(d) ? d : 0));
  return new ort.Tensor(
    spec.dtype,
    zeros(
      spec.dtype,
      dims.reduce((a, b) => a * b, 1),
    ) as never,
    dims,
  );
}

function compileStats(
  emitted: Pick<EmittedModel, 'model' | 'weightBytes' | 'nodeCount'>,
  t0: number,
  t1: number,
  reusedOptimized: boolean,
): CompileStats {
  return {
    emitMs: t1 - t0,
    sessionMs: performance.now() - t1,
    reusedCache: !(emitted.model instanceof Uint8Array) && emitted.model.reused,
    reusedOptimized,
    weightBytes: emitted.weightBytes,
    nodeCount: emitted.nodeCount,
  };
}

/** Opens a session for an emitted model, or takes another user of an open one. */
async function openSession(
  name: string,
  key: string,
  model: EmittedModel['model'],
  options: RunnerOptions,
  how: { optimizedCopy: boolean } = { optimizedCopy: true },
): Promise<{ session: ort.InferenceSession; cacheKey: string; reusedOptimized: boolean }> {
  const opts = sessionOptions(options);
  const cacheKey = `${key}|${JSON.stringify(opts)}`;
  let entry = sessions.get(cacheKey);
  let reusedOptimized = false;
  if (!entry) {
    let created: Promise<ort.InferenceSession>;
    if (model instanceof Uint8Array) created = ort.InferenceSession.create(model, opts);
    else {
      const optimized = how.optimizedCopy ? optimizedCopy(model.path, options) : undefined;
      reusedOptimized = optimized !== undefined && existsSync(join(optimized, 'complete'));
      created = optimized
        ? openOptimized(model.path, optimized, opts)
        : ort.InferenceSession.create(model.path, opts);
    }
    entry = {
      session: created.catch((e: unknown) => Promise.reject(explainSessionError(e, name, options))),
      users: 0,
    };
    sessions.set(cacheKey, entry);
  }
  entry.users += 1;
  try {
    return { session: await entry.session, cacheKey, reusedOptimized };
  } catch (e) {
    sessions.delete(cacheKey);
    throw e;
  }
}

/**
 * Where onnxruntime's optimised copy of a cached CPU model lives: beside the model, per
 * level, CPU and onnxruntime version, since level 'all' bakes in CPU-specific layouts.
 * Undefined where optimising is cheap (levels below 'extended') or the provider is not the CPU.
 */
function optimizedCopy(modelPath: string, o: RunnerOptions): string | undefined {
  const level = o.optimization ?? 'all';
  if ((o.provider ?? 'cpu') !== 'cpu' || (level !== 'all' && level !== 'extended')) return undefined;
  const machine = createHash('sha256')
    .update(`${cpus()[0]?.model ?? 'cpu'}|${arch()}|${ort.env.versions.common}`)
    .digest('hex')
    .slice(0, 12);
  return join(
    dirname(modelPath),
    `ort-${level}${o.blockedLayout === false ? '-plain-layout' : ''}-${machine}`,
  );
}

/**
 * Opens a cached model through onnxruntime's optimised copy: loads the copy with
 * optimisation off when it exists (seconds instead of re-running the optimisers over
 * gigabytes of weights), otherwise optimises once and saves the copy with external weights.
 */
async function openOptimized(
  modelPath: string,
  dir: string,
  opts: ort.InferenceSession.SessionOptions,
): Promise<ort.InferenceSession> {
  if (existsSync(join(dir, 'complete'))) {
    return ort.InferenceSession.create(join(dir, 'model.onnx'), {
      ...opts,
      graphOptimizationLevel: 'disabled',
    });
  }
  const tmp = `${dir}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  let session: ort.InferenceSession;
  try {
    mkdirSync(tmp, { recursive: true });
    session = await ort.InferenceSession.create(modelPath, {
      ...opts,
      optimizedModelFilePath: join(tmp, 'model.onnx'),
      // the copy is only ever loaded on this machine, which the folder name pins down
      logSeverityLevel: 3,
      extra: {
        ...opts.extra,
        session: {
          ...(opts.extra as { session?: Record<string, string> } | undefined)?.session,
          optimized_model_external_initializers_file_name: 'weights.bin',
          optimized_model_external_initializers_min_size_in_bytes: '1024',
        },
      },
    });
  } catch {
    // Saving failed (disk full, read-only cache): run without the copy.
    rmSync(tmp, { recursive: true, force: true });
    return ort.InferenceSession.create(modelPath, opts);
  }
  try {
    if (!existsSync(join(tmp, 'model.onnx'))) throw new Error('onnxruntime saved no optimised model');
    writeFileSync(join(tmp, 'complete'), new Date().toISOString());
    renameSync(tmp, dir);
  } catch {
    // Another process saved the same copy first, or the cache is read-only: keep what is there.
    rmSync(tmp, { recursive: true, force: true });
  }
  return session;
}

function explainSessionError(e: unknown, name: string, o: RunnerOptions): Error {
  const message = e instanceof Error ? e.message : String(e);
  if (o.provider === 'cuda' && /cuda|provider/i.test(message)) {
    return new GraphError(
      `could not start the CUDA provider for '${name}': ${message}. Install onnxruntime-node with ` +
        '`npm ci --onnxruntime-node-install=cuda12` on a host with CUDA 12 and cuDNN 9, or use the CPU provider.',
    );
  }
  return new GraphError(`onnxruntime rejected model '${name}': ${message}`);
}

/** Number of sessions currently open (for tests and diagnostics). */
export function openSessionCount(): number {
  return sessions.size;
}
