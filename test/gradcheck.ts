// A generic finite-difference gradient checker for graph ops (JAX's check_grads in spirit):
// build y = f(inputs), take L = Σ y·v for a fixed random v, and compare the graph's own
// ∂L/∂x·u with the central difference Σ (y(x+hu) − y(x−hu))·v / 2h, accumulated in float64.

import * as ort from 'onnxruntime-node';
import { evalDim } from '../engine/graph/dim.ts';
import { compile, type DType, Graph, grad, mul, reduceSum, type Tensor } from '../engine/graph/index.ts';

export interface InputSpec {
  name: string;
  /** numbers are static; strings declare symbolic dims (bound from `dims`) */
  shape: (number | string)[];
  /** concrete dims to feed; defaults to `shape` when it is all static */
  dims?: number[];
  dtype?: DType;
  /** differentiate w.r.t. this input (default: float inputs) */
  wrt?: boolean;
  /** value generator; default uniform in [-1, 1) */
  init?: (i: number, rand: () => number) => number | bigint | boolean;
}

export interface GradCheckResult {
  dtype: DType;
  /** per checked input: analytic and numeric directional derivatives */
  checks: { name: string; analytic: number; numeric: number; error: number; scale: number }[];
}

export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function size(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

function hostArray(dtype: DType, values: (number | bigint | boolean)[]) {
  switch (dtype) {
    case 'float64':
      return Float64Array.from(values as number[]);
    case 'float32':
      return Float32Array.from(values as number[]);
    case 'int64':
      return BigInt64Array.from(values.map((v) => BigInt(v as number)));
    case 'int32':
      return Int32Array.from(values as number[]);
    case 'bool':
      return Uint8Array.from(values.map((v) => (v ? 1 : 0)));
    default:
      throw new Error(`gradcheck: no host array for ${dtype}`);
  }
}

function feed(dtype: DType, values: ArrayLike<number | bigint> | Uint8Array, dims: number[]): ort.Tensor {
  if (dtype === 'bool') return new ort.Tensor('bool', values as Uint8Array, dims);
  return new ort.Tensor(dtype, values as never, dims);
}

/**
 * Checks the gradient of `build` in float64 when onnxruntime has float64 kernels for
 * every op involved, else in float32 with a larger step and tolerance.
 */
export async function gradCheck(
  build: (g: Graph, inputs: Tensor[]) => Tensor,
  specs: InputSpec[],
  opts: { seed?: number; directions?: number; preferDType?: 'float64' | 'float32' } = {},
): Promise<GradCheckResult> {
  const order: DType[] = opts.preferDType === 'float32' ? ['float32'] : ['float64', 'float32'];
  let lastError: unknown;
  for (const dtype of order) {
    try {
      return await gradCheckIn(dtype, build, specs, opts);
    } catch (e) {
      if (!/implementation|NOT_IMPLEMENTED|not implemented|Type Error|type/i.test(String(e))) throw e;
      lastError = e;
    }
  }
  throw lastError;
}

async function gradCheckIn(
  floatType: DType,
  build: (g: Graph, inputs: Tensor[]) => Tensor,
  specs: InputSpec[],
  opts: { seed?: number; directions?: number },
): Promise<GradCheckResult> {
  const rand = rng(opts.seed ?? 1234);
  const g = new Graph('gradcheck');
  const typeOf = (s: InputSpec): DType =>
    s.dtype === undefined || s.dtype === 'float32' ? floatType : s.dtype;
  const inputs = specs.map((s) => g.input(s.name, typeOf(s), s.shape));
  const y = build(g, inputs);
  const v = g.input('__v', y.dtype, y.shape);
  const loss = reduceSum(mul(y, v));
  const wrtIdx = specs
    .map((s, i) => [s, i] as const)
    .filter(([s]) => s.wrt ?? ['float32', 'float64', undefined].includes(s.dtype));
  const grads = grad(
    [loss],
    wrtIdx.map(([, i]) => inputs[i]),
  );
  g.output('y', y);
  grads.forEach((t, k) => {
    g.output(`grad_${wrtIdx[k][0].name}`, t);
  });
  const model = await compile(g, { optimization: 'disabled', intraOpThreads: 1 });
  try {
    const data = specs.map((s) => {
      const dims = s.dims ?? (s.shape as number[]);
      const n = size(dims);
      const init = s.init ?? ((_: number, r: () => number) => r() * 2 - 1);
      return hostArray(
        typeOf(s),
        Array.from({ length: n }, (_, i) => init(i, rand)),
      );
    });
    const dimsOf = (s: InputSpec) => s.dims ?? (s.shape as number[]);
    const feeds: Record<string, ort.Tensor> = {};
    specs.forEach((s, i) => {
      feeds[s.name] = feed(typeOf(s), data[i] as never, dimsOf(s));
    });
    // The projection v has y's concrete shape: bind the symbols from the fed dims.
    const bindings = new Map<string, number>();
    for (const s of specs) {
      s.shape.forEach((d, axis) => {
        if (typeof d === 'string') bindings.set(d, dimsOf(s)[axis]);
      });
    }
    const yDims = y.shape.map((d) => {
      const value = evalDim(d, bindings);
      if (value === undefined) throw new Error(`gradcheck: cannot size output axis ${String(d)}`);
      return value;
    });
    const vData = hostArray(
      y.dtype,
      Array.from({ length: size(yDims) }, () => rand() * 2 - 1),
    ) as Float64Array | Float32Array;
    feeds.__v = feed(y.dtype, vData, yDims);
    const base = await model.run(feeds);

    const eps = floatType === 'float64' ? 1e-6 : 1e-2;
    const checks: GradCheckResult['checks'] = [];
    for (const [spec, idx] of wrtIdx) {
      const x = data[idx] as Float64Array | Float32Array;
      const gx = base[`grad_${spec.name}`].data as Float64Array | Float32Array;
      for (let d = 0; d < (opts.directions ?? 2); d++) {
        const u = Float64Array.from({ length: x.length }, () => rand() * 2 - 1);
        let analytic = 0;
        for (let i = 0; i < x.length; i++) analytic += gx[i] * u[i];
        const shifted = async (sign: number) => {
          const xs = x.map((xi, i) => xi + sign * eps * u[i]);
          const out = await model.run({ ...feeds, [spec.name]: feed(typeOf(spec), xs, dimsOf(spec)) }, ['y']);
          return out.y.data as Float64Array | Float32Array;
        };
        const [plus, minus] = [await shifted(1), await shifted(-1)];
        let numeric = 0;
        let scale = 0;
        for (let i = 0; i < plus.length; i++) {
          numeric += ((plus[i] - minus[i]) * vData[i]) / (2 * eps);
          scale += Math.abs(((plus[i] + minus[i]) / 2) * vData[i]);
        }
        const error = Math.abs(analytic - numeric);
        checks.push({
          name: spec.name,
          analytic,
          numeric,
          error,
          scale: Math.max(Math.abs(analytic), Math.abs(numeric), 1e-3 * scale),
        });
      }
    }
    return { dtype: floatType, checks };
  } finally {
    await model.release();
  }
}

/** Relative tolerance a check must meet for the dtype it ran in. */
export function toleranceFor(dtype: DType): number {
  return dtype === 'float64' ? 1e-5 : 2e-2;
}
