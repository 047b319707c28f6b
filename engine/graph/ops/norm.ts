// LayerNorm (last axis) and GroupNorm (channels of [N, C, ...]). Forward uses onnxruntime's
// fused kernels (LayerNormalization; InstanceNormalization over a [N, G, -1] view); the VJP
// is the three-term formula, written with reductions and elementwise ops.

import { dimEq, dimStr, isStatic } from '../dim.ts';
import { apply1, type OpDef, RuleError, type Tensor } from '../graph.ts';
import { requireFloat, requireRank, sameDType } from '../rules.ts';
import { add, div, mul, sqrt, sub } from './elementwise.ts';
import { reduceMean, sumTo } from './reduce.ts';
import { reshape } from './shape.ts';

/** x̂ = (x − mean) / √(var + eps) over the last axis, and the input gradient from g·∂y/∂x̂. */
function normalise(x: Tensor, eps: number): Tensor {
  const centred = sub(x, reduceMean(x, -1, true));
  const variance = reduceMean(mul(centred, centred), -1, true);
  return div(centred, sqrt(add(variance, eps)));
}

function normaliseVjp(x: Tensor, gHat: Tensor, eps: number): Tensor {
  const centred = sub(x, reduceMean(x, -1, true));
  const rstd = div(1, sqrt(add(reduceMean(mul(centred, centred), -1, true), eps)));
  const xHat = mul(centred, rstd);
  const meanG = reduceMean(gHat, -1, true);
  const meanGx = reduceMean(mul(gHat, xHat), -1, true);
  return mul(rstd, sub(sub(gHat, meanG), mul(xHat, meanGx)));
}

const LayerNormOp: OpDef<{ eps: number }> = {
  name: 'LayerNorm',
  infer(inputs) {
    const [x, gamma, beta] = inputs;
    const dtype = sameDType(inputs);
    requireFloat(x);
    const c = x.shape[x.shape.length - 1];
    for (const [what, p] of [
      ['gamma', gamma],
      ['beta', beta],
    ] as const) {
      if (p.shape.length !== 1 || !dimEq(p.shape[0], c)) {
        throw new RuleError(`${what} must be [${dimStr(c)}], got [${p.shape.map(dimStr).join(',')}]`);
      }
    }
    return [{ dtype, shape: x.shape }];
  },
  emit(n, out) {
    out.node('LayerNormalization', n.inputs.map(out.name), [out.name(n.outputs[0])], {
      axis: { int: -1 },
      epsilon: { float: n.attrs.eps },
    });
  },
  vjp(n, [g], wanted) {
    if (!g) return [undefined, undefined, undefined];
    const [x, gamma, beta] = n.inputs;
    const { eps } = n.attrs;
    return [
      wanted[0] ? normaliseVjp(x, mul(g, gamma), eps) : undefined,
      wanted[1] ? sumTo(mul(g, normalise(x, eps)), gamma.shape) : undefined,
      wanted[2] ? sumTo(g, beta.shape) : undefined,
    ];
  },
};

export function layerNorm(x: Tensor, gamma: Tensor, beta: Tensor, eps = 1e-5): Tensor {
  return apply1(LayerNormOp, [x, gamma, beta], { eps });
}

const GroupNormOp: OpDef<{ groups: number; eps: number }> = {
  name: 'GroupNorm',
  infer(inputs, { groups }) {
    const [x, gamma, beta] = inputs;
    const dtype = sameDType(inputs);
    requireFloat(x);
    requireRank(x, [3, 5]);
    const c = x.shape[1];
    if (!isStatic(c) || c % groups !== 0) {
      throw new RuleError(`${dimStr(c)} channels are not divisible into ${groups} groups`);
    }
    for (const p of [gamma, beta]) {
      if (p.shape.length !== 1 || p.shape[0] !== c) throw new RuleError(`gamma and beta must be [${c}]`);
    }
    return [{ dtype, shape: x.shape }];
  },
  emit(n, out) {
    const [x, gamma, beta] = n.inputs;
    const { groups, eps } = n.attrs;
    const dtype = x.dtype;
    const grouped = out.fresh('grouped');
    out.node('Reshape', [out.name(x), out.ints([0, groups, -1])], [grouped]);
    const ones = out.fresh('ones');
    const zeros = out.fresh('zeros');
    out.node('Expand', [out.scalar(1, dtype), out.ints([groups])], [ones]);
    out.node('Expand', [out.scalar(0, dtype), out.ints([groups])], [zeros]);
    const normed = out.fresh('normed');
    out.node('InstanceNormalization', [grouped, ones, zeros], [normed], { epsilon: { float: eps } });
    const back = out.fresh('ungrouped');
    out.node('Reshape', [normed, out.shape(x.shape)], [back]);
    const affine = [x.shape[1] as number, ...x.shape.slice(2).map(() => 1)];
    const g = out.fresh('gamma');
    const b = out.fresh('beta');
    out.node('Reshape', [out.name(gamma), out.ints(affine)], [g]);
    out.node('Reshape', [out.name(beta), out.ints(affine)], [b]);
    const scaled = out.fresh('scaled');
    out.node('Mul', [back, g], [scaled]);
    out.node('Add', [scaled, b], [out.name(n.outputs[0])]);
  },
  vjp(n, [g], wanted) {
    if (!g) return [undefined, undefined, undefined];
    const [x, gamma] = n.inputs;
    const { groups, eps } = n.attrs;
    const c = x.shape[1] as number;
    const affine = [c, ...x.shape.slice(2).map(() => 1)];
    const grouped = (t: Tensor) => reshape(t, [x.shape[0], groups, -1]);
    const gx = wanted[0]
      ? reshape(normaliseVjp(grouped(x), grouped(mul(g, reshape(gamma, affine))), eps), x.shape)
      : undefined;
    const ggamma = wanted[1]
      ? reshape(sumTo(mul(g, reshape(normalise(grouped(x), eps), x.shape)), [1, ...affine]), [c])
      : undefined;
    const gbeta = wanted[2] ? reshape(sumTo(g, [1, ...affine]), [c]) : undefined;
    return [gx, ggamma, gbeta];
  },
};

export function groupNorm(x: Tensor, gamma: Tensor, beta: Tensor, groups: number, eps = 1e-5): Tensor {
  return apply1(GroupNormOp, [x, gamma, beta], { groups, eps });
}
