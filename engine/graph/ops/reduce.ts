// Reductions over axes (Sum, Mean, Max, Min), and sumTo, which folds a broadcast
// gradient back onto the shape of the input that was broadcast.

import { type Dim, dimEq, dimStr, isStatic, shapeEq, shapeStr } from '../dim.ts';
import { onnxDataType } from '../dtype.ts';
import { apply1, GraphError, type OpDef, type Tensor, type TensorType } from '../graph.ts';
import { normAxes, requireFloat } from '../rules.ts';
import { cast, div, equal, mul } from './elementwise.ts';
import { expand, reshape, unsqueeze } from './shape.ts';

interface ReduceAttrs {
  axes: number[]; // normalised, sorted
  keepdims: boolean;
}

function reducedShape(x: TensorType, { axes, keepdims }: ReduceAttrs): Dim[] {
  const out: Dim[] = [];
  x.shape.forEach((d, i) => {
    if (!axes.includes(i)) out.push(d);
    else if (keepdims) out.push(1);
  });
  return out;
}

/** Gradient of y (reduced over attrs.axes) broadcast back to x's shape. */
function spread(g: Tensor, x: Tensor, { axes, keepdims }: ReduceAttrs): Tensor {
  const kept = keepdims ? g : unsqueeze(g, axes);
  return expand(kept, x.shape);
}

function reduceOp(
  name: 'ReduceSum' | 'ReduceMean' | 'ReduceMax' | 'ReduceMin',
  vjp: (x: Tensor, y: Tensor, g: Tensor, attrs: ReduceAttrs) => Tensor,
): OpDef<ReduceAttrs> {
  return {
    name,
    infer: ([x], attrs) => {
      if (name === 'ReduceMean') requireFloat(x);
      return [{ dtype: x.dtype, shape: reducedShape(x, attrs) }];
    },
    emit(n, out) {
      const { axes, keepdims } = n.attrs;
      const x = out.name(n.inputs[0]);
      const y = out.name(n.outputs[0]);
      // ReduceSum takes axes as an input from opset 13, the others from opset 18.
      const axesAsInput = name === 'ReduceSum' || out.opset >= 18;
      if (axesAsInput) out.node(name, [x, out.ints(axes)], [y], { keepdims: { int: keepdims ? 1 : 0 } });
      else out.node(name, [x], [y], { axes: { ints: axes }, keepdims: { int: keepdims ? 1 : 0 } });
    },
    vjp: (n, [g], wanted) => [g && wanted[0] ? vjp(n.inputs[0], n.outputs[0], g, n.attrs) : undefined],
  };
}

const ReduceSumOp = reduceOp('ReduceSum', (x, _y, g, attrs) => spread(g, x, attrs));
const ReduceMeanOp = reduceOp('ReduceMean', (x, _y, g, attrs) =>
  div(spread(g, x, attrs), countOf(x, attrs.axes)),
);
// Ties: the gradient is split evenly among all positions that reach the extreme value.
const extremeVjp = (x: Tensor, y: Tensor, g: Tensor, attrs: ReduceAttrs) => {
  const mask = cast(equal(x, spread(y, x, attrs)), x.dtype);
  const count = reduceSum(mask, attrs.axes, true);
  return mul(mask, div(spread(g, x, attrs), expand(count, x.shape)));
};
const ReduceMaxOp = reduceOp('ReduceMax', extremeVjp);
const ReduceMinOp = reduceOp('ReduceMin', extremeVjp);

function reduce(
  op: OpDef<ReduceAttrs>,
  x: Tensor,
  axes: number | readonly number[] | undefined,
  keepdims: boolean,
) {
  const list = axes === undefined ? x.shape.map((_, i) => i) : typeof axes === 'number' ? [axes] : axes;
  let norm: number[];
  try {
    norm = normAxes(list, x.rank);
  } catch (e) {
    throw new GraphError(`${op.name}: ${(e as Error).message}. Input: ${x.describe()}.`);
  }
  if (norm.length === 0) return x;
  return apply1(op, [x], { axes: norm, keepdims });
}

/** Sum over `axes` (all axes when omitted). */
export const reduceSum = (x: Tensor, axes?: number | readonly number[], keepdims = false) =>
  reduce(ReduceSumOp, x, axes, keepdims);
export const reduceMean = (x: Tensor, axes?: number | readonly number[], keepdims = false) =>
  reduce(ReduceMeanOp, x, axes, keepdims);
export const reduceMax = (x: Tensor, axes?: number | readonly number[], keepdims = false) =>
  reduce(ReduceMaxOp, x, axes, keepdims);
export const reduceMin = (x: Tensor, axes?: number | readonly number[], keepdims = false) =>
  reduce(ReduceMinOp, x, axes, keepdims);

// ---------------------------------------------------------------- element counts

const CountOp: OpDef<{ axes: number[] }> = {
  name: 'Count',
  infer: ([x]) => [{ dtype: x.dtype, shape: [] }],
  emit(n, out) {
    const shape = out.fresh('shape');
    out.node('Shape', [out.name(n.inputs[0])], [shape]);
    const picked = out.fresh('dims');
    out.node('Gather', [shape, out.ints(n.attrs.axes)], [picked], { axis: { int: 0 } });
    const prod = out.fresh('count');
    out.node('ReduceProd', [picked], [prod], { keepdims: { int: 0 } });
    out.node('Cast', [prod], [out.name(n.outputs[0])], { to: { int: dtypeCode(n.inputs[0]) } });
  },
  nondiff: [0],
};

function dtypeCode(t: Tensor): number {
  return onnxDataType(t.dtype);
}

/** Number of elements of x over `axes`, as a scalar of x's dtype (a constant when static). */
export function countOf(x: Tensor, axes: readonly number[]): Tensor {
  const dims = axes.map((a) => x.shape[a]);
  if (dims.every(isStatic))
    return x.graph.scalar(
      dims.reduce((a, b) => a * b, 1),
      x.dtype,
    );
  return apply1(CountOp, [x], { axes: [...axes] });
}

// ---------------------------------------------------------------- sumTo

/** Sums a broadcast gradient back to `shape`: over leading axes and axes where `shape` is 1. */
export function sumTo(g: Tensor, shape: readonly Dim[]): Tensor {
  if (shapeEq(g.shape, shape)) return g;
  const lead = g.rank - shape.length;
  if (lead < 0)
    throw new GraphError(`sumTo: gradient ${g.describe()} has lower rank than ${shapeStr(shape)}`);
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) {
    if (i < lead) axes.push(i);
    else {
      const target = shape[i - lead];
      if (dimEq(target, g.shape[i])) continue;
      if (target === 1) axes.push(i);
      else {
        throw new GraphError(
          `sumTo: cannot fold axis ${i} of size ${dimStr(g.shape[i])} onto ${dimStr(target)} (gradient ${g.describe()} → ${shapeStr(shape)})`,
        );
      }
    }
  }
  const summed = reduceSum(g, axes, true);
  return reshape(summed, shape);
}
