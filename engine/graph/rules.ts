// Shape rules shared by several op families: broadcasting, axes, dtype agreement.

import { type Dim, dimEq, dimStr, isStatic } from './dim.ts';
import type { DType } from './dtype.ts';
import { RuleError, type TensorType } from './graph.ts';

/** numpy/ONNX multidirectional broadcasting of two shapes. */
export function broadcastShapes(a: readonly Dim[], b: readonly Dim[]): Dim[] {
  const rank = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    const da = i < rank - a.length ? 1 : a[i - (rank - a.length)];
    const db = i < rank - b.length ? 1 : b[i - (rank - b.length)];
    if (dimEq(da, db)) out.push(da);
    else if (da === 1) out.push(db);
    else if (db === 1) out.push(da);
    else {
      throw new RuleError(
        `dimensions ${dimStr(da)} and ${dimStr(db)} at axis ${i - rank} do not broadcast`,
        'Broadcast axes must be equal or 1; reshape or expand one input.',
      );
    }
  }
  return out;
}

export function sameDType(inputs: readonly TensorType[], what = 'inputs'): DType {
  const dtype = inputs[0].dtype;
  for (const t of inputs) {
    if (t.dtype !== dtype) {
      throw new RuleError(`${what} have different dtypes (${dtype} and ${t.dtype})`, 'Cast one with cast().');
    }
  }
  return dtype;
}

export function requireFloat(t: TensorType, what = 'input'): void {
  if (!['float32', 'float16', 'float64'].includes(t.dtype)) {
    throw new RuleError(`${what} must be a float tensor, not ${t.dtype}`);
  }
}

export function requireRank(t: TensorType, rank: number | [number, number], what = 'input'): void {
  const [lo, hi] = typeof rank === 'number' ? [rank, rank] : rank;
  if (t.shape.length < lo || t.shape.length > hi) {
    const want = lo === hi ? `rank ${lo}` : `rank ${lo} to ${hi}`;
    throw new RuleError(`${what} must have ${want}, got rank ${t.shape.length}`);
  }
}

/** Normalises a possibly negative axis against a rank. */
export function normAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) {
    throw new RuleError(`axis ${axis} is out of range for rank ${rank}`);
  }
  return a;
}

export function normAxes(axes: readonly number[], rank: number): number[] {
  const out = axes.map((a) => normAxis(a, rank));
  if (new Set(out).size !== out.length) throw new RuleError(`axes ${JSON.stringify(axes)} repeat an axis`);
  return out.sort((a, b) => a - b);
}

export function requireStatic(d: Dim, what: string): number {
  if (!isStatic(d)) throw new RuleError(`${what} must be a static size, got ${dimStr(d)}`);
  return d;
}
