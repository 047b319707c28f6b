// Shape ops: Reshape, Transpose, Concat, Slice, Split, Gather, Expand, Unsqueeze,
// Squeeze, Pad and zeros. Target shapes may hold symbolic dims; the emitter turns those
// into run-time shape tensors.

import {
  type Dim,
  dimAdd,
  dimDiv,
  dimEq,
  dimProduct,
  dimStr,
  dimSub,
  isStatic,
  type Sym,
  shapeEq,
  shapeStr,
  toDim,
} from '../dim.ts';
import type { DType } from '../dtype.ts';
import { apply, apply1, type Grads, GraphError, type OpDef, RuleError, type Tensor } from '../graph.ts';
import { broadcastShapes, normAxes, normAxis, sameDType } from '../rules.ts';
import { cast } from './elementwise.ts';
import { sumTo } from './reduce.ts';

type DimLike = number | string | Sym;

// ---------------------------------------------------------------- Reshape

const ReshapeOp: OpDef<{ shape: Dim[] }> = {
  name: 'Reshape',
  infer([x], { shape }) {
    if (!dimEq(dimProduct(x.shape), dimProduct(shape))) {
      throw new RuleError(
        `cannot reshape ${dimStr(dimProduct(x.shape))} elements into ${shapeStr(shape)} (${dimStr(dimProduct(shape))})`,
      );
    }
    return [{ dtype: x.dtype, shape }];
  },
  emit(n, out) {
    const x = n.inputs[0];
    const target = n.attrs.shape;
    // Prefer ONNX's own encodings: a literal, 0 = "same as the input's axis", one -1.
    const codes: (number | null)[] = target.map((d, i) => {
      if (isStatic(d)) return d;
      if (i < x.rank && dimEq(x.shape[i], d)) return 0;
      return null;
    });
    const unresolved = codes.filter((c) => c === null).length;
    const shape =
      unresolved === 0
        ? out.ints(codes as number[])
        : unresolved === 1
          ? out.ints(codes.map((c) => (c === null ? -1 : c)))
          : out.shape(target);
    out.node('Reshape', [out.name(x), shape], [out.name(n.outputs[0])]);
  },
  vjp: (n, [g], wanted) => [g && wanted[0] ? reshape(g, n.inputs[0].shape) : undefined],
};

/** Reshape; one entry may be -1 (inferred). */
export function reshape(x: Tensor, shape: readonly (DimLike | -1)[]): Tensor {
  const minus = shape.filter((d) => d === -1).length;
  if (minus > 1)
    throw new GraphError(`Reshape: at most one -1 in ${JSON.stringify(shape)}. Input: ${x.describe()}.`);
  let dims: Dim[];
  if (minus === 1) {
    const known = shape.filter((d) => d !== -1).map((d) => toDim(d as DimLike));
    let missing: Dim;
    try {
      missing = dimDiv(dimProduct(x.shape), dimProduct(known));
    } catch (e) {
      throw new GraphError(
        `Reshape: ${(e as Error).message} (target ${JSON.stringify(shape)}). Input: ${x.describe()}.`,
      );
    }
    dims = shape.map((d) => (d === -1 ? missing : toDim(d)));
  } else dims = shape.map((d) => toDim(d as DimLike));
  if (shapeEq(dims, x.shape)) return x;
  return apply1(ReshapeOp, [x], { shape: dims });
}

// ---------------------------------------------------------------- Transpose

const TransposeOp: OpDef<{ perm: number[] }> = {
  name: 'Transpose',
  infer([x], { perm }) {
    const sorted = [...perm].sort((a, b) => a - b);
    if (perm.length !== x.shape.length || sorted.some((p, i) => p !== i)) {
      throw new RuleError(`perm ${JSON.stringify(perm)} is not a permutation of the ${x.shape.length} axes`);
    }
    return [{ dtype: x.dtype, shape: perm.map((p) => x.shape[p]) }];
  },
  emit: (n, out) =>
    out.node('Transpose', [out.name(n.inputs[0])], [out.name(n.outputs[0])], {
      perm: { ints: n.attrs.perm },
    }),
  vjp(n, [g], wanted) {
    if (!g || !wanted[0]) return [undefined];
    const inverse = new Array<number>(n.attrs.perm.length);
    n.attrs.perm.forEach((p, i) => {
      inverse[p] = i;
    });
    return [transpose(g, inverse)];
  },
};

export function transpose(x: Tensor, perm?: readonly number[]): Tensor {
  const p = perm ? [...perm] : x.shape.map((_, i) => x.rank - 1 - i);
  if (p.every((v, i) => v === i)) return x;
  return apply1(TransposeOp, [x], { perm: p });
}

/** Swaps the last two axes. */
export function transposeLast2(x: Tensor): Tensor {
  const perm = x.shape.map((_, i) => i);
  [perm[x.rank - 2], perm[x.rank - 1]] = [perm[x.rank - 1], perm[x.rank - 2]];
  return transpose(x, perm);
}

// ---------------------------------------------------------------- Concat

const ConcatOp: OpDef<{ axis: number }> = {
  name: 'Concat',
  infer(inputs, { axis }) {
    const dtype = sameDType(inputs);
    const rank = inputs[0].shape.length;
    let total: Dim = 0;
    for (const [i, t] of inputs.entries()) {
      if (t.shape.length !== rank)
        throw new RuleError(`input ${i} has rank ${t.shape.length}, input 0 has ${rank}`);
      t.shape.forEach((d, k) => {
        if (k !== axis && !dimEq(d, inputs[0].shape[k])) {
          throw new RuleError(
            `input ${i} differs from input 0 at axis ${k}, which is not the concat axis ${axis}`,
          );
        }
      });
      try {
        total = dimAdd(total, t.shape[axis]);
      } catch (e) {
        throw new RuleError((e as Error).message);
      }
    }
    const shape = [...inputs[0].shape];
    shape[axis] = total;
    return [{ dtype, shape }];
  },
  emit: (n, out) =>
    out.node('Concat', n.inputs.map(out.name), [out.name(n.outputs[0])], { axis: { int: n.attrs.axis } }),
  vjp(n, [g], wanted) {
    if (!g) return n.inputs.map(() => undefined);
    let offset: Dim = 0;
    return n.inputs.map((t, i) => {
      const start = offset;
      offset = dimAdd(offset, t.shape[n.attrs.axis]);
      return wanted[i] ? slice(g, n.attrs.axis, start, offset) : undefined;
    });
  },
};

export function concat(inputs: readonly Tensor[], axis: number): Tensor {
  if (inputs.length === 0) throw new GraphError('Concat: needs at least one input');
  if (inputs.length === 1) return inputs[0];
  let a: number;
  try {
    a = normAxis(axis, inputs[0].rank);
  } catch (e) {
    throw new GraphError(
      `Concat: ${(e as Error).message}. Inputs: ${inputs.map((t) => t.describe()).join(', ')}.`,
    );
  }
  return apply1(ConcatOp, inputs, { axis: a });
}

// ---------------------------------------------------------------- Slice and Pad

const SliceOp: OpDef<{ axis: number; start: Dim; end: Dim }> = {
  name: 'Slice',
  infer([x], { axis, start, end }) {
    let size: Dim;
    try {
      size = dimSub(end, start);
    } catch (e) {
      throw new RuleError((e as Error).message);
    }
    const whole = x.shape[axis];
    if (isStatic(size) && size < 0)
      throw new RuleError(`slice [${dimStr(start)}, ${dimStr(end)}) is reversed`);
    if (isStatic(whole) && isStatic(end) && end > whole) {
      throw new RuleError(`slice end ${end} is past the axis size ${whole}`);
    }
    const shape = [...x.shape];
    shape[axis] = size;
    return [{ dtype: x.dtype, shape }];
  },
  emit(n, out) {
    const { axis, start, end } = n.attrs;
    out.node(
      'Slice',
      [out.name(n.inputs[0]), out.shape([start]), out.shape([end]), out.ints([axis])],
      [out.name(n.outputs[0])],
    );
  },
  vjp(n, [g], wanted) {
    if (!g || !wanted[0]) return [undefined];
    const { axis, start, end } = n.attrs;
    const x = n.inputs[0];
    return [padAxis(g, axis, start, dimSub(x.shape[axis], end))];
  },
};

/** x[..., start:end, ...] along one axis (step 1). */
export function slice(x: Tensor, axis: number, start: DimLike, end: DimLike): Tensor {
  const a = normAxis(axis, x.rank);
  const s = toDim(start);
  const e = toDim(end);
  if (dimEq(s, 0) && dimEq(e, x.shape[a])) return x;
  return apply1(SliceOp, [x], { axis: a, start: s, end: e });
}

const PadOp: OpDef<{ axis: number; before: Dim; after: Dim }> = {
  name: 'Pad',
  infer([x], { axis, before, after }) {
    const shape = [...x.shape];
    try {
      shape[axis] = dimAdd(dimAdd(before, x.shape[axis]), after);
    } catch (e) {
      throw new RuleError((e as Error).message);
    }
    return [{ dtype: x.dtype, shape }];
  },
  emit(n, out) {
    const x = n.inputs[0];
    const pads: Dim[] = new Array(2 * x.rank).fill(0);
    pads[n.attrs.axis] = n.attrs.before;
    pads[x.rank + n.attrs.axis] = n.attrs.after;
    out.node('Pad', [out.name(x), out.shape(pads)], [out.name(n.outputs[0])], {
      mode: { string: 'constant' },
    });
  },
  vjp(n, [g], wanted) {
    if (!g || !wanted[0]) return [undefined];
    const { axis, before } = n.attrs;
    return [slice(g, axis, before, dimAdd(before, n.inputs[0].shape[axis]))];
  },
};

/** Zero padding before and after one axis. */
export function padAxis(x: Tensor, axis: number, before: Dim, after: Dim): Tensor {
  if (dimEq(before, 0) && dimEq(after, 0)) return x;
  return apply1(PadOp, [x], { axis, before, after });
}

// ---------------------------------------------------------------- Split

const SplitOp: OpDef<{ axis: number; sizes: Dim[] }> = {
  name: 'Split',
  infer([x], { axis, sizes }) {
    let total: Dim = 0;
    for (const s of sizes) total = dimAdd(total, s);
    if (!dimEq(total, x.shape[axis])) {
      throw new RuleError(
        `split sizes ${shapeStr(sizes)} add up to ${dimStr(total)}, not ${dimStr(x.shape[axis])}`,
      );
    }
    return sizes.map((s) => {
      const shape = [...x.shape];
      shape[axis] = s;
      return { dtype: x.dtype, shape };
    });
  },
  emit(n, out) {
    out.node('Split', [out.name(n.inputs[0]), out.shape(n.attrs.sizes)], n.outputs.map(out.name), {
      axis: { int: n.attrs.axis },
    });
  },
  vjp(n, grads, wanted): Grads {
    if (!wanted[0] || grads.every((g) => !g)) return [undefined];
    const parts = n.outputs.map((o, i) => grads[i] ?? zeros(n.inputs[0].graph, o.shape, o.dtype));
    return [concat(parts, n.attrs.axis)];
  },
};

/** Splits one axis into parts of the given sizes, or into `parts` equal parts. */
export function split(x: Tensor, axis: number, sizesOrParts: readonly DimLike[] | number): Tensor[] {
  const a = normAxis(axis, x.rank);
  const sizes =
    typeof sizesOrParts === 'number'
      ? new Array<Dim>(sizesOrParts).fill(dimDiv(x.shape[a], sizesOrParts))
      : sizesOrParts.map(toDim);
  return apply(SplitOp, [x], { axis: a, sizes });
}

// ---------------------------------------------------------------- Expand, Unsqueeze, Squeeze, zeros

const ExpandOp: OpDef<{ shape: Dim[] }> = {
  name: 'Expand',
  infer([x], { shape }) {
    const out = broadcastShapes(x.shape, shape);
    if (!shapeEq(out, shape)) {
      throw new RuleError(
        `cannot expand ${shapeStr(x.shape)} to ${shapeStr(shape)} (it would give ${shapeStr(out)})`,
      );
    }
    return [{ dtype: x.dtype, shape }];
  },
  emit: (n, out) =>
    out.node('Expand', [out.name(n.inputs[0]), out.shape(n.attrs.shape)], [out.name(n.outputs[0])]),
  vjp: (n, [g], wanted) => [g && wanted[0] ? sumTo(g, n.inputs[0].shape) : undefined],
};

export function expand(x: Tensor, shape: readonly DimLike[]): Tensor {
  const dims = shape.map(toDim);
  if (shapeEq(x.shape, dims)) return x;
  return apply1(ExpandOp, [x], { shape: dims });
}

const UnsqueezeOp: OpDef<{ axes: number[] }> = {
  name: 'Unsqueeze',
  infer([x], { axes }) {
    const rank = x.shape.length + axes.length;
    const shape: Dim[] = [];
    let k = 0;
    for (let i = 0; i < rank; i++) shape.push(axes.includes(i) ? 1 : x.shape[k++]);
    return [{ dtype: x.dtype, shape }];
  },
  emit: (n, out) =>
    out.node('Unsqueeze', [out.name(n.inputs[0]), out.ints(n.attrs.axes)], [out.name(n.outputs[0])]),
  vjp: (n, [g], wanted) => [g && wanted[0] ? squeeze(g, n.attrs.axes) : undefined],
};

/** Inserts size-1 axes at the given positions of the result. */
export function unsqueeze(x: Tensor, axes: number | readonly number[]): Tensor {
  const list = typeof axes === 'number' ? [axes] : axes;
  let norm: number[];
  try {
    norm = normAxes(list, x.rank + list.length);
  } catch (e) {
    throw new GraphError(`Unsqueeze: ${(e as Error).message}. Input: ${x.describe()}.`);
  }
  return apply1(UnsqueezeOp, [x], { axes: norm });
}

const SqueezeOp: OpDef<{ axes: number[] }> = {
  name: 'Squeeze',
  infer([x], { axes }) {
    for (const a of axes) {
      if (x.shape[a] !== 1) throw new RuleError(`axis ${a} has size ${dimStr(x.shape[a])}, not 1`);
    }
    return [{ dtype: x.dtype, shape: x.shape.filter((_, i) => !axes.includes(i)) }];
  },
  emit: (n, out) =>
    out.node('Squeeze', [out.name(n.inputs[0]), out.ints(n.attrs.axes)], [out.name(n.outputs[0])]),
  vjp: (n, [g], wanted) => [g && wanted[0] ? unsqueeze(g, n.attrs.axes) : undefined],
};

export function squeeze(x: Tensor, axes: number | readonly number[]): Tensor {
  const list = typeof axes === 'number' ? [axes] : axes;
  let norm: number[];
  try {
    norm = normAxes(list, x.rank);
  } catch (e) {
    throw new GraphError(`Squeeze: ${(e as Error).message}. Input: ${x.describe()}.`);
  }
  return apply1(SqueezeOp, [x], { axes: norm });
}

/** A zero tensor of a (possibly symbolic) shape. */
export function zeros(graph: Tensor['graph'], shape: readonly DimLike[], dtype: DType): Tensor {
  return expand(graph.scalar(0, dtype), shape);
}

// ---------------------------------------------------------------- Gather and its adjoint

const GatherOp: OpDef<{ axis: number }> = {
  name: 'Gather',
  infer([data, indices], { axis }) {
    if (indices.dtype !== 'int64' && indices.dtype !== 'int32') {
      throw new RuleError(`indices must be int64 or int32, not ${indices.dtype}`);
    }
    return [
      {
        dtype: data.dtype,
        shape: [...data.shape.slice(0, axis), ...indices.shape, ...data.shape.slice(axis + 1)],
      },
    ];
  },
  emit: (n, out) =>
    out.node('Gather', n.inputs.map(out.name), [out.name(n.outputs[0])], { axis: { int: n.attrs.axis } }),
  nondiff: [1],
  vjp(n, [g], wanted) {
    if (!g || !wanted[0]) return [undefined, undefined];
    const [data, indices] = n.inputs;
    const axis = n.attrs.axis;
    const q = indices.rank;
    // Move the indexed block to the front, scatter-add into zeros, move the axis back.
    const front = [...range(axis, axis + q), ...range(0, axis), ...range(axis + q, g.rank)];
    const gFront = transpose(g, front);
    const dataFront = [axis, ...range(0, axis), ...range(axis + 1, data.rank)];
    const target = zeros(
      data.graph,
      dataFront.map((a) => data.shape[a]),
      data.dtype,
    );
    const idx = unsqueeze(cast(indices, 'int64'), indices.rank);
    const scattered = scatterAdd(target, idx, gFront);
    const back = new Array<number>(data.rank);
    dataFront.forEach((a, i) => {
      back[a] = i;
    });
    return [transpose(scattered, back), undefined];
  },
};

export function gather(data: Tensor, indices: Tensor, axis = 0): Tensor {
  return apply1(GatherOp, [data, indices], { axis: normAxis(axis, data.rank) });
}

const ScatterAddOp: OpDef<Record<string, never>> = {
  name: 'ScatterNDAdd',
  infer([data, indices, updates]) {
    sameDType([data, updates], 'data and updates');
    if (indices.dtype !== 'int64') throw new RuleError(`indices must be int64, not ${indices.dtype}`);
    return [{ dtype: data.dtype, shape: data.shape }];
  },
  emit: (n, out) =>
    out.node('ScatterND', n.inputs.map(out.name), [out.name(n.outputs[0])], { reduction: { string: 'add' } }),
  nondiff: [1],
  vjp(n, [g], wanted) {
    if (!g) return [undefined, undefined, undefined];
    const [, indices] = n.inputs;
    // updates[i...] was added at data[indices[i...]]: its gradient gathers g there.
    const flatIdx = squeeze(indices, indices.rank - 1);
    return [wanted[0] ? g : undefined, undefined, wanted[2] ? gather(g, flatIdx, 0) : undefined];
  },
};

/** data with updates added at indices (ScatterND, reduction add; last index axis of size 1). */
export function scatterAdd(data: Tensor, indices: Tensor, updates: Tensor): Tensor {
  return apply1(ScatterAddOp, [data, indices, updates], {});
}

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);
}
