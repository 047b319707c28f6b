// Elementwise ops: arithmetic with broadcasting, unary math, activations, comparisons,
// Where and Cast. Each op keeps its shape rule, ONNX emission and VJP together.

import { type DType, isFloat, onnxDataType as onnxTypeCode } from '../dtype.ts';
import { apply1, type Grads, GraphError, type Node, type OpDef, RuleError, Tensor } from '../graph.ts';
import { broadcastShapes, requireFloat, sameDType } from '../rules.ts';
import { sumTo } from './reduce.ts';

export type Operand = Tensor | number;

/** Turns numbers into scalar constants of the other operand's dtype. */
function tensors(a: Operand, b: Operand, op: string): [Tensor, Tensor] {
  if (a instanceof Tensor && b instanceof Tensor) return [a, b];
  if (a instanceof Tensor) return [a, a.graph.scalar(b as number, a.dtype)];
  if (b instanceof Tensor) return [b.graph.scalar(a, b.dtype), b];
  throw new GraphError(`${op}: at least one operand must be a tensor`);
}

// ---------------------------------------------------------------- binary arithmetic

type BinaryVjp = (a: Tensor, b: Tensor, y: Tensor, g: Tensor) => [() => Tensor, () => Tensor];

function binaryOp(name: string, vjp: BinaryVjp): OpDef<Record<string, never>> {
  return {
    name,
    infer: ([a, b]) => [{ dtype: sameDType([a, b]), shape: broadcastShapes(a.shape, b.shape) }],
    emit: (n, out) => out.node(name, n.inputs.map(out.name), [out.name(n.outputs[0])]),
    vjp(n, [g], wanted) {
      if (!g) return [undefined, undefined];
      const [a, b] = n.inputs;
      const [ga, gb] = vjp(a, b, n.outputs[0], g);
      return [wanted[0] ? sumTo(ga(), a.shape) : undefined, wanted[1] ? sumTo(gb(), b.shape) : undefined];
    },
  };
}

const AddOp = binaryOp('Add', (_a, _b, _y, g) => [() => g, () => g]);
const SubOp = binaryOp('Sub', (_a, _b, _y, g) => [() => g, () => neg(g)]);
const MulOp = binaryOp('Mul', (a, b, _y, g) => [() => mul(g, b), () => mul(g, a)]);
const DivOp = binaryOp('Div', (_a, b, y, g) => [() => div(g, b), () => neg(div(mul(g, y), b))]);
const PowOp = binaryOp('Pow', (a, b, y, g) => [
  () => mul(g, mul(b, pow(a, sub(b, 1)))),
  () => mul(g, mul(y, log(a))),
]);

export const add = (a: Operand, b: Operand) => apply1(AddOp, tensors(a, b, 'Add'), {});
export const sub = (a: Operand, b: Operand) => apply1(SubOp, tensors(a, b, 'Sub'), {});
export const mul = (a: Operand, b: Operand) => apply1(MulOp, tensors(a, b, 'Mul'), {});
export const div = (a: Operand, b: Operand) => apply1(DivOp, tensors(a, b, 'Div'), {});
export const pow = (a: Operand, b: Operand) => apply1(PowOp, tensors(a, b, 'Pow'), {});

// ---------------------------------------------------------------- unary math

type UnaryVjp = (x: Tensor, y: Tensor, g: Tensor) => Tensor;

/** A unary op emitted as one ONNX op (or a chain written by `emit`). */
function unaryOp(
  name: string,
  vjp: UnaryVjp,
  emit?: (n: Node<Record<string, never>>, out: Parameters<OpDef['emit']>[1]) => void,
  floatOnly = true,
): OpDef<Record<string, never>> {
  return {
    name,
    infer: ([x]) => {
      if (floatOnly) requireFloat(x);
      return [{ dtype: x.dtype, shape: x.shape }];
    },
    emit: emit ?? ((n, out) => out.node(name, [out.name(n.inputs[0])], [out.name(n.outputs[0])])),
    vjp: (n, [g], wanted) => [g && wanted[0] ? vjp(n.inputs[0], n.outputs[0], g) : undefined],
  };
}

const NegOp = unaryOp('Neg', (_x, _y, g) => neg(g), undefined, false);
const AbsOp = unaryOp('Abs', (x, _y, g) => mul(g, sign(x)), undefined, false);
const SignOp: OpDef<Record<string, never>> = {
  name: 'Sign',
  infer: ([x]) => [{ dtype: x.dtype, shape: x.shape }],
  emit: (n, out) => out.node('Sign', [out.name(n.inputs[0])], [out.name(n.outputs[0])]),
  vjp: () => [undefined], // zero almost everywhere
};
const ExpOp = unaryOp('Exp', (_x, y, g) => mul(g, y));
const LogOp = unaryOp('Log', (x, _y, g) => div(g, x));
const SqrtOp = unaryOp('Sqrt', (_x, y, g) => div(mul(g, 0.5), y));
const SinOp = unaryOp('Sin', (x, _y, g) => mul(g, cos(x)));
const CosOp = unaryOp('Cos', (x, _y, g) => neg(mul(g, sin(x))));
const ErfOp = unaryOp('Erf', (x, _y, g) => mul(g, mul(exp(neg(mul(x, x))), 2 / Math.sqrt(Math.PI))));
const TanhOp = unaryOp('Tanh', (_x, y, g) => mul(g, sub(1, mul(y, y))));
const SigmoidOp = unaryOp('Sigmoid', (_x, y, g) => mul(g, mul(y, sub(1, y))));
const ReciprocalOp = unaryOp('Reciprocal', (_x, y, g) => neg(mul(g, mul(y, y))));
const ReluOp = unaryOp('Relu', (x, _y, g) => mul(g, cast(greater(x, 0), g.dtype)));

export const neg = (x: Tensor) => apply1(NegOp, [x], {});
export const abs = (x: Tensor) => apply1(AbsOp, [x], {});
export const sign = (x: Tensor) => apply1(SignOp, [x], {});
export const exp = (x: Tensor) => apply1(ExpOp, [x], {});
export const log = (x: Tensor) => apply1(LogOp, [x], {});
export const sqrt = (x: Tensor) => apply1(SqrtOp, [x], {});
export const sin = (x: Tensor) => apply1(SinOp, [x], {});
export const cos = (x: Tensor) => apply1(CosOp, [x], {});
export const erf = (x: Tensor) => apply1(ErfOp, [x], {});
export const tanh = (x: Tensor) => apply1(TanhOp, [x], {});
export const sigmoid = (x: Tensor) => apply1(SigmoidOp, [x], {});
export const reciprocal = (x: Tensor) => apply1(ReciprocalOp, [x], {});
export const relu = (x: Tensor) => apply1(ReluOp, [x], {});

// ---------------------------------------------------------------- activations
// Emitted in the exact forms onnxruntime's fusions recognise (x·σ(x), x·σ(1.702x),
// 0.5·x·(1+erf(x/√2)), the tanh form), so a fused kernel runs; each VJP is the closed form.

type Writer = Parameters<OpDef['emit']>[1];

function emitChain(out: Writer, n: Node, build: (x: string, w: Writer, t: DType) => string): void {
  const x = out.name(n.inputs[0]);
  const result = build(x, out, n.inputs[0].dtype);
  out.node('Identity', [result], [out.name(n.outputs[0])]);
}

function tmp(out: Writer, op: string, inputs: string[]): string {
  const name = out.fresh(op.toLowerCase());
  out.node(op, inputs, [name]);
  return name;
}

const SiluOp = unaryOp(
  'SiLU',
  (x, _y, g) => {
    const s = sigmoid(x);
    return mul(g, mul(s, add(1, mul(x, sub(1, s)))));
  },
  (n, out) => emitChain(out, n, (x, w) => tmp(w, 'Mul', [x, tmp(w, 'Sigmoid', [x])])),
);

const QUICK_GELU_ALPHA = 1.702;
const QuickGeluOp = unaryOp(
  'QuickGELU',
  (x, _y, g) => {
    const s = sigmoid(mul(x, QUICK_GELU_ALPHA));
    return mul(g, add(s, mul(mul(x, QUICK_GELU_ALPHA), mul(s, sub(1, s)))));
  },
  (n, out) =>
    emitChain(out, n, (x, w, t) =>
      tmp(w, 'Mul', [x, tmp(w, 'Sigmoid', [tmp(w, 'Mul', [x, w.scalar(QUICK_GELU_ALPHA, t)])])]),
    ),
);

const GeluErfOp = unaryOp(
  'GELU',
  (x, _y, g) => {
    const cdf = mul(add(erf(mul(x, Math.SQRT1_2)), 1), 0.5);
    const pdf = mul(exp(mul(mul(x, x), -0.5)), 1 / Math.sqrt(2 * Math.PI));
    return mul(g, add(cdf, mul(x, pdf)));
  },
  (n, out) =>
    emitChain(out, n, (x, w, t) => {
      const e = tmp(w, 'Erf', [tmp(w, 'Div', [x, w.scalar(Math.SQRT2, t)])]);
      const one = tmp(w, 'Add', [e, w.scalar(1, t)]);
      return tmp(w, 'Mul', [tmp(w, 'Mul', [x, one]), w.scalar(0.5, t)]);
    }),
);

const GELU_K = Math.sqrt(2 / Math.PI);
const GELU_C = 0.044715;
const GeluTanhOp = unaryOp(
  'GELUTanh',
  (x, _y, g) => {
    const x2 = mul(x, x);
    const t = tanh(mul(add(x, mul(mul(x2, x), GELU_C)), GELU_K));
    const dt = mul(mul(sub(1, mul(t, t)), add(mul(x2, 3 * GELU_C), 1)), GELU_K);
    return mul(g, add(mul(add(t, 1), 0.5), mul(mul(x, dt), 0.5)));
  },
  (n, out) =>
    emitChain(out, n, (x, w, t) => {
      const cube = tmp(w, 'Mul', [tmp(w, 'Mul', [x, x]), x]);
      const inner = tmp(w, 'Add', [x, tmp(w, 'Mul', [cube, w.scalar(GELU_C, t)])]);
      const th = tmp(w, 'Tanh', [tmp(w, 'Mul', [inner, w.scalar(GELU_K, t)])]);
      const one = tmp(w, 'Add', [th, w.scalar(1, t)]);
      return tmp(w, 'Mul', [tmp(w, 'Mul', [x, w.scalar(0.5, t)]), one]);
    }),
);

export const silu = (x: Tensor) => apply1(SiluOp, [x], {});
export const quickGelu = (x: Tensor) => apply1(QuickGeluOp, [x], {});
export const gelu = (x: Tensor, approximate: 'none' | 'tanh' = 'none') =>
  apply1(approximate === 'tanh' ? GeluTanhOp : GeluErfOp, [x], {});

// ---------------------------------------------------------------- comparisons, Where, Cast

function compareOp(name: string): OpDef<Record<string, never>> {
  return {
    name,
    infer: ([a, b]) => {
      sameDType([a, b]);
      return [{ dtype: 'bool', shape: broadcastShapes(a.shape, b.shape) }];
    },
    emit: (n, out) => out.node(name, n.inputs.map(out.name), [out.name(n.outputs[0])]),
    nondiff: [0, 1],
  };
}

const EqualOp = compareOp('Equal');
const LessOp = compareOp('Less');
const GreaterOp = compareOp('Greater');

export const equal = (a: Operand, b: Operand) => apply1(EqualOp, tensors(a, b, 'Equal'), {});
export const less = (a: Operand, b: Operand) => apply1(LessOp, tensors(a, b, 'Less'), {});
export const greater = (a: Operand, b: Operand) => apply1(GreaterOp, tensors(a, b, 'Greater'), {});

const WhereOp: OpDef<Record<string, never>> = {
  name: 'Where',
  infer: ([c, a, b]) => {
    if (c.dtype !== 'bool') throw new RuleError(`the condition must be bool, not ${c.dtype}`);
    const dtype = sameDType([a, b], 'the two branches');
    return [{ dtype, shape: broadcastShapes(broadcastShapes(c.shape, a.shape), b.shape) }];
  },
  emit: (n, out) => out.node('Where', n.inputs.map(out.name), [out.name(n.outputs[0])]),
  nondiff: [0],
  vjp(n, [g], wanted) {
    if (!g) return [undefined, undefined, undefined];
    const [c, a, b] = n.inputs;
    const zero = g.graph.scalar(0, g.dtype);
    return [
      undefined,
      wanted[1] ? sumTo(where(c, g, zero), a.shape) : undefined,
      wanted[2] ? sumTo(where(c, zero, g), b.shape) : undefined,
    ];
  },
};

export const where = (cond: Tensor, a: Operand, b: Operand) => {
  const [ta, tb] = tensors(a, b, 'Where');
  return apply1(WhereOp, [cond, ta, tb], {});
};

const CastOp: OpDef<{ to: DType }> = {
  name: 'Cast',
  infer: ([x], { to }) => [{ dtype: to, shape: x.shape }],
  emit: (n, out) =>
    out.node('Cast', [out.name(n.inputs[0])], [out.name(n.outputs[0])], {
      to: { int: onnxTypeCode(n.attrs.to) },
    }),
  vjp(n, [g], wanted): Grads {
    const x = n.inputs[0];
    if (!g || !wanted[0] || !isFloat(x.dtype)) return [undefined];
    return [cast(g, x.dtype)];
  },
};

export const cast = (x: Tensor, to: DType) => (x.dtype === to ? x : apply1(CastOp, [x], { to }));
