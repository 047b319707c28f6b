// 2-D convolution (stride, padding, dilation, groups) and nearest ×2 upsampling.
// The input gradient of a convolution is the transposed convolution with the same
// weights; the weight gradient (group 1) is a convolution of the input with the gradient.

import { type Dim, dimDiv, dimEq, dimMul, dimStr, isStatic } from '../dim.ts';
import { apply1, GraphError, type OpDef, RuleError, type Tensor } from '../graph.ts';
import { requireFloat, requireRank, requireStatic, sameDType } from '../rules.ts';
import { reduceSum } from './reduce.ts';
import { reshape, slice, transpose } from './shape.ts';

export interface ConvAttrs {
  strides: [number, number];
  /** [top, left, bottom, right], ONNX order */
  pads: [number, number, number, number];
  dilations: [number, number];
  group: number;
}

/** Output size of one spatial axis; symbolic sizes are taken as multiples of the stride. */
function convOut(size: Dim, k: number, s: number, d: number, pBegin: number, pEnd: number): Dim {
  const c = pBegin + pEnd - d * (k - 1) - 1;
  if (isStatic(size)) {
    const out = Math.floor((size + c) / s) + 1;
    if (out <= 0) throw new RuleError(`spatial size ${size} is too small for a ${k}-wide kernel`);
    return out;
  }
  if (s === 1 && c === -1) return size;
  if (s > 1 && c >= -s && c <= -1) return dimDiv(size, s);
  throw new RuleError(
    `symbolic spatial size ${dimStr(size)} needs "same" padding (stride ${s}, kernel ${k}, pads ${pBegin}/${pEnd})`,
  );
}

/** output_padding that makes ConvTranspose give back the input size exactly. */
function outputPadding(size: Dim, k: number, s: number, d: number, pBegin: number, pEnd: number): number {
  const c = pBegin + pEnd - d * (k - 1) - 1;
  if (isStatic(size)) return (((size + c) % s) + s) % s;
  return s === 1 ? 0 : s + c;
}

const ConvOp: OpDef<ConvAttrs> = {
  name: 'Conv',
  infer(inputs, { strides, pads, dilations, group }) {
    const [x, w, b] = inputs;
    const dtype = sameDType(inputs);
    requireFloat(x);
    requireRank(x, 4, 'x');
    requireRank(w, 4, 'the weight');
    const [n, c, h, wd] = x.shape;
    const [o, ci] = w.shape;
    const kh = requireStatic(w.shape[2], 'the kernel height');
    const kw = requireStatic(w.shape[3], 'the kernel width');
    if (!dimEq(dimMul(ci, group), c)) {
      throw new RuleError(
        `x has ${dimStr(c)} channels but the weight expects ${dimStr(ci)} × group ${group}`,
        'Weight layout is [out, in/group, kh, kw].',
      );
    }
    if (isStatic(o) && o % group !== 0)
      throw new RuleError(`${o} output channels are not divisible by group ${group}`);
    if (b) {
      requireRank(b, 1, 'the bias');
      if (!dimEq(b.shape[0], o))
        throw new RuleError(`the bias has ${dimStr(b.shape[0])} entries, not ${dimStr(o)}`);
    }
    const oh = convOut(h, kh, strides[0], dilations[0], pads[0], pads[2]);
    const ow = convOut(wd, kw, strides[1], dilations[1], pads[1], pads[3]);
    return [{ dtype, shape: [n, o, oh, ow] }];
  },
  emit(n, out) {
    const { strides, pads, dilations, group } = n.attrs;
    const w = n.inputs[1];
    out.node('Conv', n.inputs.map(out.name), [out.name(n.outputs[0])], {
      kernel_shape: { ints: [w.shape[2] as number, w.shape[3] as number] },
      strides: { ints: strides },
      pads: { ints: pads },
      dilations: { ints: dilations },
      group: { int: group },
    });
  },
  vjp(n, [g], wanted) {
    if (!g) return [undefined, undefined, undefined];
    const [x, w, b] = n.inputs;
    const a = n.attrs;
    const gx = wanted[0] ? convTransposeForGrad(g, w, x, a) : undefined;
    const gw = wanted[1] ? convWeightGrad(x, g, w, a) : undefined;
    const gb = b && wanted[2] ? reduceSum(g, [0, 2, 3]) : undefined;
    return [gx, gw, gb];
  },
};

export function conv2d(
  x: Tensor,
  weight: Tensor,
  bias?: Tensor,
  opts: {
    stride?: number;
    padding?: number | [number, number, number, number];
    dilation?: number;
    group?: number;
  } = {},
): Tensor {
  const s = opts.stride ?? 1;
  const p = opts.padding ?? 0;
  const d = opts.dilation ?? 1;
  const attrs: ConvAttrs = {
    strides: [s, s],
    pads: typeof p === 'number' ? [p, p, p, p] : p,
    dilations: [d, d],
    group: opts.group ?? 1,
  };
  return apply1(ConvOp, bias ? [x, weight, bias] : [x, weight], attrs);
}

// ---------------------------------------------------------------- the adjoints

interface ConvTAttrs extends ConvAttrs {
  outputPadding: [number, number];
  /** the spatial size to restore, for the shape rule */
  size: [Dim, Dim];
}

const ConvTransposeOp: OpDef<ConvTAttrs> = {
  name: 'ConvTranspose',
  infer([g, w], { group, size }) {
    sameDType([g, w]);
    const channels = dimMul(w.shape[1], group);
    return [{ dtype: g.dtype, shape: [g.shape[0], channels, size[0], size[1]] }];
  },
  emit(n, out) {
    const { strides, pads, dilations, group, outputPadding } = n.attrs;
    const w = n.inputs[1];
    out.node('ConvTranspose', n.inputs.map(out.name), [out.name(n.outputs[0])], {
      kernel_shape: { ints: [w.shape[2] as number, w.shape[3] as number] },
      strides: { ints: strides },
      pads: { ints: pads },
      dilations: { ints: dilations },
      group: { int: group },
      output_padding: { ints: outputPadding },
    });
  },
  vjp(n, [g], wanted) {
    // The adjoint of the adjoint: a plain convolution with the same weights.
    if (!g || !wanted[0]) return [undefined, undefined];
    const { strides, pads, dilations, group } = n.attrs;
    return [apply1(ConvOp, [g, n.inputs[1]], { strides, pads, dilations, group }), undefined];
  },
  nondiff: [1],
};

function convTransposeForGrad(g: Tensor, w: Tensor, x: Tensor, a: ConvAttrs): Tensor {
  const [kh, kw] = [w.shape[2] as number, w.shape[3] as number];
  const [h, wd] = [x.shape[2], x.shape[3]];
  const outputPadding: [number, number] = [outputPadding1(h, kh, a, 0), outputPadding1(wd, kw, a, 1)];
  return apply1(ConvTransposeOp, [g, w], { ...a, outputPadding, size: [h, wd] });
}

function outputPadding1(size: Dim, k: number, a: ConvAttrs, axis: 0 | 1): number {
  return outputPadding(size, k, a.strides[axis], a.dilations[axis], a.pads[axis], a.pads[axis + 2]);
}

/** dL/dW for group 1: correlate the input with the output gradient (batch ↔ channels swapped). */
function convWeightGrad(x: Tensor, g: Tensor, w: Tensor, a: ConvAttrs): Tensor {
  if (a.group !== 1) {
    throw new GraphError(
      'Conv: the weight gradient of a grouped convolution is not supported; differentiate w.r.t. x',
    );
  }
  if (![x.shape[2], x.shape[3], g.shape[2], g.shape[3]].every(isStatic)) {
    throw new GraphError('Conv: the weight gradient needs static spatial sizes');
  }
  const xs = transpose(x, [1, 0, 2, 3]); // [C, N, H, W]
  const gs = transpose(g, [1, 0, 2, 3]); // [O, N, Ho, Wo] used as the kernel
  const corr = apply1(ConvOp, [xs, gs], {
    strides: a.dilations,
    pads: a.pads,
    dilations: a.strides,
    group: 1,
  }); // [C, O, kh', kw'] with kh' ≥ kh
  const kh = w.shape[2] as number;
  const kw = w.shape[3] as number;
  const cut = slice(slice(corr, 2, 0, kh), 3, 0, kw);
  return transpose(cut, [1, 0, 2, 3]);
}

// ---------------------------------------------------------------- nearest ×2 upsampling

const Upsample2xOp: OpDef<Record<string, never>> = {
  name: 'UpsampleNearest2x',
  infer([x]) {
    requireRank(x, 4);
    const [n, c, h, w] = x.shape;
    return [{ dtype: x.dtype, shape: [n, c, dimMul(h, 2), dimMul(w, 2)] }];
  },
  emit(n, out) {
    // PyTorch's F.interpolate(mode='nearest'): asymmetric coordinates, floor.
    const scales = out.fresh('scales');
    out.node('Constant', [], [scales], { value_floats: { floats: [1, 1, 2, 2] } });
    out.node('Resize', [out.name(n.inputs[0]), '', scales], [out.name(n.outputs[0])], {
      mode: { string: 'nearest' },
      coordinate_transformation_mode: { string: 'asymmetric' },
      nearest_mode: { string: 'floor' },
    });
  },
  vjp(n, [g], wanted) {
    if (!g || !wanted[0]) return [undefined];
    const [b, c, h, w] = n.inputs[0].shape;
    // Each input pixel fed a 2×2 block: sum-pool the gradient.
    return [reduceSum(reshape(g, [b, c, h, 2, w, 2]), [3, 5])];
  },
};

export function upsampleNearest2x(x: Tensor): Tensor {
  return apply1(Upsample2xOp, [x], {});
}
