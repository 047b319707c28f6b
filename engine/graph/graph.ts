// The tensor IR: a graph of typed tensors produced by ops. Every op (see ops/) declares
// its shape rule, its ONNX emission and its vector–Jacobian rule side by side.

import { type Dim, type Sym, shapeStr, toDim } from './dim.ts';
import { assertDType, bytesPerElement, type DType, encodeValues } from './dtype.ts';

export interface TensorType {
  readonly dtype: DType;
  readonly shape: readonly Dim[];
}

/** Bytes of a weight, read only when the model is emitted. */
export interface WeightData {
  readonly byteLength: number;
  /** Identifies the bytes without reading them (file identity and range, or a hash of the bytes). */
  readonly fingerprint: string;
  read(): Uint8Array;
}

export type Leaf =
  | { kind: 'input'; name: string }
  | { kind: 'weight'; name: string; data: WeightData }
  | { kind: 'constant'; data: Uint8Array };

export class Tensor implements TensorType {
  constructor(
    readonly graph: Graph,
    readonly id: number,
    readonly dtype: DType,
    readonly shape: readonly Dim[],
    readonly producer: Node | null,
    readonly outputIndex: number,
    readonly leaf: Leaf | null,
  ) {}

  get rank(): number {
    return this.shape.length;
  }

  /** A short description for error messages: `latent float32 [B,4,H,W]`. */
  describe(): string {
    const label = this.leaf && this.leaf.kind !== 'constant' ? `${this.leaf.name} ` : '';
    return `${label}${this.dtype} ${shapeStr(this.shape)}`;
  }
}

export interface Node<A = unknown> {
  readonly id: number;
  readonly op: OpDef<A>;
  readonly attrs: A;
  readonly inputs: readonly Tensor[];
  readonly outputs: readonly Tensor[];
}

/** What an op's emit() uses to write ONNX (implemented in emit.ts). */
export interface OnnxWriter {
  readonly opset: number;
  name(t: Tensor): string;
  fresh(hint: string): string;
  node(
    opType: string,
    inputs: readonly string[],
    outputs: readonly string[],
    attrs?: Record<string, Attr>,
    /** operator set domain; '' (default) is ONNX's own */
    domain?: string,
  ): void;
  /** a 1-D int64 constant */
  ints(values: readonly number[]): string;
  /** a 0-d constant of a dtype */
  scalar(value: number, dtype: DType): string;
  /** a 1-D int64 tensor holding `dims`, computed at run time where they are symbolic */
  shape(dims: readonly Dim[]): string;
}

export type Attr =
  | { int: number }
  | { float: number }
  | { ints: readonly number[] }
  | { floats: readonly number[] }
  | { string: string };

export type Grads = readonly (Tensor | undefined)[];

export interface OpDef<A = unknown> {
  readonly name: string;
  /** Shape and dtype rule; throws RuleError naming the rule broken. */
  infer(inputs: readonly TensorType[], attrs: A): TensorType[];
  emit(node: Node<A>, out: OnnxWriter): void;
  /**
   * Vector–Jacobian product: given the gradients of the outputs (undefined where none
   * flows), returns the gradients of the inputs marked in `wanted`, built with IR ops.
   */
  vjp?(node: Node<A>, outGrads: Grads, wanted: readonly boolean[]): Grads;
  /** Inputs that never carry a gradient (indices, masks, shapes). */
  readonly nondiff?: readonly number[];
}

/** A broken shape/dtype rule, raised inside infer() and reported with the op's inputs. */
export class RuleError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

/** Any error building, differentiating or emitting a graph. */
export class GraphError extends Error {
  override name = 'GraphError';
}

export function ruleFailure(
  op: string,
  inputs: readonly TensorType[],
  rule: string,
  hint?: string,
): GraphError {
  const given = inputs.map((t) => (t instanceof Tensor ? t.describe() : `${t.dtype} ${shapeStr(t.shape)}`));
  return new GraphError(
    `${op}: ${rule}. Inputs: ${given.length ? given.join(', ') : '(none)'}.${hint ? ` ${hint}` : ''}`,
  );
}

export class Graph {
  readonly nodes: Node[] = [];
  readonly inputs: Tensor[] = [];
  readonly outputs: { name: string; tensor: Tensor }[] = [];
  private nextId = 0;
  private readonly names = new Set<string>();

  constructor(readonly name = 'graph') {}

  /** A graph input; string dims are symbols bound at run time (`['B', 4, 'H', 'W']`). */
  input(name: string, dtype: DType, shape: readonly (number | string | Sym)[]): Tensor {
    this.claimName(name, 'input');
    const t = this.leaf({ kind: 'input', name }, assertDType(dtype, `input '${name}'`), shape.map(toDim));
    this.inputs.push(t);
    return t;
  }

  /** A named constant weight whose bytes are read lazily at emission. */
  weight(name: string, dtype: DType, shape: readonly number[], data: WeightData): Tensor {
    this.claimName(name, 'weight');
    const expected = shape.reduce((a, b) => a * b, 1) * bytesPerElement(dtype);
    if (data.byteLength !== expected) {
      throw new GraphError(
        `weight '${name}': ${data.byteLength} bytes given for ${dtype} ${shapeStr(shape)}, which needs ${expected}`,
      );
    }
    return this.leaf({ kind: 'weight', name, data }, dtype, shape.map(toDim));
  }

  /** A small constant, emitted inline. */
  constant(values: ArrayLike<number | bigint>, shape: readonly number[], dtype: DType): Tensor {
    const size = shape.reduce((a, b) => a * b, 1);
    if (values.length !== size) {
      throw new GraphError(`constant: ${values.length} values given for shape ${shapeStr(shape)} (${size})`);
    }
    return this.leaf({ kind: 'constant', data: encodeValues(values, dtype) }, dtype, shape.map(toDim));
  }

  scalar(value: number, dtype: DType): Tensor {
    return this.constant([value], [], dtype);
  }

  output(name: string, tensor: Tensor): this {
    if (tensor.graph !== this) throw new GraphError(`output '${name}': the tensor belongs to another graph`);
    this.claimName(name, 'output');
    this.outputs.push({ name, tensor });
    return this;
  }

  /** Adds a node; called by apply(). */
  addNode<A>(op: OpDef<A>, attrs: A, inputs: readonly Tensor[], types: readonly TensorType[]): Node<A> {
    const outputs: Tensor[] = [];
    const node: Node<A> = { id: this.nextId++, op, attrs, inputs, outputs };
    types.forEach((type, i) => {
      outputs.push(new Tensor(this, this.nextId++, type.dtype, type.shape, node as Node, i, null));
    });
    this.nodes.push(node as Node);
    return node;
  }

  private leaf(leaf: Leaf, dtype: DType, shape: Dim[]): Tensor {
    return new Tensor(this, this.nextId++, dtype, shape, null, 0, leaf);
  }

  private claimName(name: string, what: string): void {
    if (!name) throw new GraphError(`${what} needs a non-empty name`);
    if (this.names.has(name))
      throw new GraphError(`${what} '${name}': the name is already used in this graph`);
    this.names.add(name);
  }
}

/** Applies an op: checks its inputs, infers output types, records the node. */
export function apply<A>(op: OpDef<A>, inputs: readonly Tensor[], attrs: A, graph?: Graph): Tensor[] {
  const g = graph ?? inputs[0]?.graph;
  if (!g) throw new GraphError(`${op.name}: needs at least one input or an explicit graph`);
  for (const [i, t] of inputs.entries()) {
    if (!(t instanceof Tensor))
      throw ruleFailure(op.name, [], `input ${i} is not a tensor (got ${typeof t})`);
    if (t.graph !== g) throw ruleFailure(op.name, inputs, `input ${i} belongs to another graph`);
  }
  let types: TensorType[];
  try {
    types = op.infer(inputs, attrs);
  } catch (e) {
    if (e instanceof RuleError) throw ruleFailure(op.name, inputs, e.message, e.hint);
    throw e;
  }
  return g.addNode(op, attrs, inputs, types).outputs as Tensor[];
}

export function apply1<A>(op: OpDef<A>, inputs: readonly Tensor[], attrs: A, graph?: Graph): Tensor {
  return apply(op, inputs, attrs, graph)[0];
}
