// Writes an IR graph as an ONNX model. Small models come back as bytes; models whose
// weights pass a threshold are written once, with the weights in an external data file,
// to a cache directory keyed by a hash of the graph and the weights' fingerprints.

import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { allStatic, type Dim, dimStr, isStatic, type Sym } from './dim.ts';
import { type DType, encodeValues, onnxDataType } from './dtype.ts';
import {
  type Attr,
  type Graph,
  GraphError,
  type Node,
  type OnnxWriter,
  type Tensor,
  type WeightData,
} from './graph.ts';
import {
  type AttributeProto,
  AttributeProto_AttributeType,
  ModelProto,
  type NodeProto,
  type TensorProto,
  TensorProto_DataLocation,
  type ValueInfoProto,
} from './onnx/onnx.ts';

export const DEFAULT_OPSET = 17;
const IR_VERSION = 8;
/** External data offsets are page-aligned so onnxruntime can map the file instead of copying it. */
const ALIGNMENT = 4096;

export interface EmitOptions {
  opset?: number;
  /** Weight bytes above which weights go to an external data file in `cacheDir` (default 256 MiB). */
  externalDataThreshold?: number;
  /** Where external-data models are kept between runs; required once the threshold is passed. */
  cacheDir?: string;
}

export interface ValueSpec {
  name: string;
  dtype: DType;
  shape: Dim[];
}

export interface EmittedModel {
  /** Hash of the graph structure and the weights' fingerprints. */
  key: string;
  /** The model bytes, or the path of a cached model.onnx with its weights file beside it. */
  model: Uint8Array | { path: string; reused: boolean };
  inputs: ValueSpec[];
  outputs: ValueSpec[];
  weightBytes: number;
  nodeCount: number;
}

export function emitModel(graph: Graph, options: EmitOptions = {}): EmittedModel {
  const opset = options.opset ?? DEFAULT_OPSET;
  if (opset < 17) throw new GraphError(`opset ${opset} is too old: the graph layer emits opset 17 or newer`);
  if (graph.outputs.length === 0)
    throw new GraphError(`graph '${graph.name}' has no outputs; call graph.output()`);

  const needed = reachableNodes(graph);
  const writer = new Writer(graph, opset);
  for (const node of needed) {
    const before = writer.nodeCount;
    node.op.emit(node, writer);
    if (writer.nodeCount === before) throw new GraphError(`${node.op.name}: emitted no ONNX node`);
  }
  writer.finishOutputs();

  const weights = writer.weights();
  const weightBytes = weights.reduce((sum, w) => sum + w.tensor.leaf!.data.byteLength, 0);
  const inputs = graph.inputs.map(spec);
  const outputs = graph.outputs.map(({ name, tensor }) => ({
    name,
    dtype: tensor.dtype,
    shape: [...tensor.shape],
  }));

  // Structure first, weights as bare references: this is what the cache key covers.
  const protoWithoutData = writer.model(weights.map((w) => w.proto));
  const hash = createHash('sha256').update(ModelProto.encode(protoWithoutData).finish());
  for (const w of weights) hash.update(`\0${w.proto.name}\0${w.tensor.leaf!.data.fingerprint}`);
  const key = hash.digest('hex').slice(0, 32);

  const threshold = options.externalDataThreshold ?? 256 * 1024 * 1024;
  const base = { key, inputs, outputs, weightBytes, nodeCount: writer.nodeCount };
  if (weightBytes <= threshold) {
    for (const w of weights) w.proto.rawData = w.tensor.leaf!.data.read();
    return { ...base, model: ModelProto.encode(writer.model(weights.map((w) => w.proto))).finish() };
  }
  if (!options.cacheDir) {
    throw new GraphError(
      `graph '${graph.name}' has ${(weightBytes / 2 ** 20).toFixed(0)} MiB of weights, over the in-memory limit: set a cache directory for external data`,
    );
  }
  const dir = join(options.cacheDir, `${graph.name}-${key}`);
  const path = join(dir, 'model.onnx');
  if (existsSync(join(dir, 'complete'))) return { ...base, model: { path, reused: true } };
  writeExternal(dir, weights, (protos) => ModelProto.encode(writer.model(protos)).finish());
  return { ...base, model: { path, reused: false } };
}

function spec(t: Tensor): ValueSpec {
  return { name: t.leaf?.kind === 'input' ? t.leaf.name : `t${t.id}`, dtype: t.dtype, shape: [...t.shape] };
}

/** Nodes the outputs depend on, in order; fails on inputs produced later (a cycle) or elsewhere. */
function reachableNodes(graph: Graph): Node[] {
  const position = new Map<Node, number>();
  graph.nodes.forEach((n, i) => {
    position.set(n, i);
  });
  const keep = new Set<Node>();
  const stack = graph.outputs.map((o) => o.tensor);
  while (stack.length) {
    const t = stack.pop()!;
    if (t.graph !== graph) throw new GraphError(`tensor ${t.describe()} belongs to another graph`);
    const n = t.producer;
    if (!n || keep.has(n)) continue;
    if (!position.has(n)) throw new GraphError(`${n.op.name}: node is not part of graph '${graph.name}'`);
    keep.add(n);
    for (const input of n.inputs) {
      const p = input.producer;
      if (p && (position.get(p) ?? Number.POSITIVE_INFINITY) >= position.get(n)!) {
        throw new GraphError(
          `${n.op.name}: its input ${input.describe()} is produced after it — the graph has a cycle`,
        );
      }
      stack.push(input);
    }
  }
  return graph.nodes.filter((n) => keep.has(n));
}

interface WeightEntry {
  tensor: Tensor & { leaf: { kind: 'weight'; name: string; data: WeightData } };
  proto: TensorProto;
}

class Writer implements OnnxWriter {
  private readonly names = new Map<number, string>();
  private readonly used = new Set<string>();
  private readonly nodes: NodeProto[] = [];
  private readonly constants: TensorProto[] = [];
  private readonly constCache = new Map<string, string>();
  private readonly weightEntries = new Map<string, WeightEntry>();
  private readonly symCache = new Map<string, string>();
  /** operator domains beyond ONNX's own that nodes use (com.microsoft's fused kernels) */
  private readonly domains = new Set<string>();
  private counter = 0;

  constructor(
    private readonly graph: Graph,
    readonly opset: number,
  ) {
    for (const t of graph.inputs) this.claim(t, (t.leaf as { name: string }).name);
    // Outputs take their public names where the tensor is produced inside the graph.
    for (const { name, tensor } of graph.outputs) {
      if (!tensor.leaf && !this.names.has(tensor.id)) this.claim(tensor, name);
    }
  }

  get nodeCount(): number {
    return this.nodes.length;
  }

  /** An arrow so ops can pass it straight to map(). */
  readonly name = (t: Tensor): string => {
    const known = this.names.get(t.id);
    if (known) return known;
    const leaf = t.leaf;
    if (leaf?.kind === 'weight') {
      const entry: WeightEntry = {
        tensor: t as WeightEntry['tensor'],
        proto: {
          name: leaf.name,
          dataType: onnxDataType(t.dtype),
          dims: t.shape as number[],
        },
      };
      this.weightEntries.set(leaf.name, entry);
      return this.claim(t, leaf.name);
    }
    if (leaf?.kind === 'constant') {
      const name = this.constant(leaf.data, t.dtype, t.shape as number[]);
      this.names.set(t.id, name);
      return name;
    }
    return this.claim(t, `t${t.id}`);
  };

  fresh(hint: string): string {
    let name: string;
    do name = `${hint}_${this.counter++}`;
    while (this.used.has(name));
    this.used.add(name);
    return name;
  }

  node(
    opType: string,
    inputs: readonly string[],
    outputs: readonly string[],
    attrs: Record<string, Attr> = {},
    domain = '',
  ): void {
    if (domain) this.domains.add(domain);
    this.nodes.push({
      opType,
      ...(domain ? { domain } : {}),
      name: `${opType}_${this.nodes.length}`,
      input: [...inputs],
      output: [...outputs],
      attribute: Object.entries(attrs).map(([name, a]) => attribute(name, a)),
    });
  }

  ints(values: readonly number[]): string {
    return this.constant(encodeValues(values, 'int64'), 'int64', [values.length]);
  }

  scalar(value: number, dtype: DType): string {
    return this.constant(encodeValues([value], dtype), dtype, []);
  }

  shape(dims: readonly Dim[]): string {
    if (allStatic(dims)) return this.ints(dims);
    const parts: string[] = [];
    let run: number[] = [];
    for (const d of dims) {
      if (isStatic(d)) run.push(d);
      else {
        if (run.length) parts.push(this.ints(run));
        run = [];
        parts.push(this.symValue(d));
      }
    }
    if (run.length) parts.push(this.ints(run));
    if (parts.length === 1) return parts[0];
    const out = this.fresh('shape');
    this.node('Concat', parts, [out], { axis: { int: 0 } });
    return out;
  }

  weights(): WeightEntry[] {
    return [...this.weightEntries.values()];
  }

  /** Outputs that are leaves, or a tensor published twice, need an Identity. */
  finishOutputs(): void {
    for (const { name, tensor } of this.graph.outputs) {
      const source = this.name(tensor);
      if (source !== name) this.node('Identity', [source], [name]);
    }
  }

  model(weights: TensorProto[]): ModelProto {
    const g = this.graph;
    return {
      irVersion: IR_VERSION,
      producerName: 'clora-bot',
      opsetImport: [
        { domain: '', version: this.opset },
        ...[...this.domains].sort().map((domain) => ({ domain, version: 1 })),
      ],
      graph: {
        name: g.name,
        node: this.nodes,
        initializer: [...weights, ...this.constants],
        input: g.inputs.map((t) => valueInfo((t.leaf as { name: string }).name, t.dtype, t.shape)),
        output: g.outputs.map(({ name, tensor }) => valueInfo(name, tensor.dtype, tensor.shape)),
      },
    };
  }

  private claim(t: Tensor, name: string): string {
    if (this.used.has(name))
      throw new GraphError(`two values are named '${name}' in graph '${this.graph.name}'`);
    this.used.add(name);
    this.names.set(t.id, name);
    return name;
  }

  private constant(data: Uint8Array, dtype: DType, dims: number[]): string {
    const key = `${dtype}:${dims.join('x')}:${Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64')}`;
    const cached = this.constCache.get(key);
    if (cached) return cached;
    const name = this.fresh('const');
    this.constants.push({ name, dataType: onnxDataType(dtype), dims, rawData: data });
    this.constCache.set(key, name);
    return name;
  }

  /** A 1-element int64 tensor holding a symbolic dimension's value at run time. */
  private symValue(d: Sym): string {
    const key = d.toString();
    const cached = this.symCache.get(key);
    if (cached) return cached;
    let num: string | undefined;
    let den: string | undefined;
    const times = (acc: string | undefined, v: string) => {
      if (!acc) return v;
      const out = this.fresh('dim');
      this.node('Mul', [acc, v], [out]);
      return out;
    };
    for (const [name, power] of d.factors) {
      const base = this.symbolSource(name);
      for (let i = 0; i < Math.abs(power); i++) {
        if (power > 0) num = times(num, base);
        else den = times(den, base);
      }
    }
    const [n, q] = fraction(d.coef);
    if (n !== 1) num = times(num, this.ints([n]));
    if (q !== 1) den = times(den, this.ints([q]));
    let value = num ?? this.ints([1]);
    if (den) {
      const out = this.fresh('dim');
      this.node('Div', [value, den], [out]);
      value = out;
    }
    this.symCache.set(key, value);
    return value;
  }

  private symbolSource(symbol: string): string {
    const key = `sym:${symbol}`;
    const cached = this.symCache.get(key);
    if (cached) return cached;
    for (const t of this.graph.inputs) {
      const axis = t.shape.findIndex(
        (d) => !isStatic(d) && d.factors.length === 1 && d.factors[0][0] === symbol && d.factors[0][1] === 1,
      );
      if (axis < 0) continue;
      const dim = t.shape[axis] as Sym;
      let value = this.fresh(`${symbol}_value`);
      this.node('Shape', [this.name(t)], [value], { start: { int: axis }, end: { int: axis + 1 } });
      const [n, q] = fraction(dim.coef);
      if (n !== 1 || q !== 1) {
        const scaled = this.fresh(`${symbol}_value`);
        const mul = this.fresh('dim');
        this.node('Mul', [value, this.ints([q])], [mul]);
        this.node('Div', [mul, this.ints([n])], [scaled]);
        value = scaled;
      }
      this.symCache.set(key, value);
      return value;
    }
    throw new GraphError(
      `symbolic dimension '${symbol}' is not the size of any input axis of graph '${this.graph.name}'; ` +
        `declare it in an input's shape (inputs: ${this.graph.inputs.map((t) => t.describe()).join(', ')})`,
    );
  }
}

function fraction(x: number): [number, number] {
  for (let q = 1; q <= 1 << 20; q *= 2) if (Number.isInteger(x * q)) return [x * q, q];
  throw new GraphError(`dimension coefficient ${x} is not a ratio of an integer and a power of two`);
}

function attribute(name: string, a: Attr): AttributeProto {
  const T = AttributeProto_AttributeType;
  if ('int' in a) return { name, type: T.INT, i: a.int };
  if ('float' in a) return { name, type: T.FLOAT, f: a.float };
  if ('ints' in a) return { name, type: T.INTS, ints: [...a.ints] };
  if ('floats' in a) return { name, type: T.FLOATS, floats: [...a.floats] };
  return { name, type: T.STRING, s: Buffer.from(a.string, 'utf8') };
}

function valueInfo(name: string, dtype: DType, shape: readonly Dim[]): ValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: onnxDataType(dtype),
        shape: { dim: shape.map((d) => (isStatic(d) ? { dimValue: d } : { dimParam: dimStr(d) })) },
      },
    },
  };
}

function writeExternal(
  dir: string,
  weights: WeightEntry[],
  encode: (protos: TensorProto[]) => Uint8Array,
): void {
  const parent = join(dir, '..');
  mkdirSync(parent, { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  mkdirSync(tmp);
  try {
    const fd = openSync(join(tmp, 'weights.bin'), 'w');
    let offset = 0;
    try {
      for (const w of weights) {
        offset = Math.ceil(offset / ALIGNMENT) * ALIGNMENT;
        const bytes = w.tensor.leaf.data.read();
        let written = 0;
        while (written < bytes.byteLength) {
          written += writeSync(fd, bytes, written, bytes.byteLength - written, offset + written);
        }
        w.proto.dataLocation = TensorProto_DataLocation.EXTERNAL;
        w.proto.externalData = [
          { key: 'location', value: 'weights.bin' },
          { key: 'offset', value: String(offset) },
          { key: 'length', value: String(bytes.byteLength) },
        ];
        offset += bytes.byteLength;
      }
    } finally {
      closeSync(fd);
    }
    writeFileSync(join(tmp, 'model.onnx'), encode(weights.map((w) => w.proto)));
    writeFileSync(join(tmp, 'complete'), new Date().toISOString());
    try {
      renameSync(tmp, dir);
    } catch (e) {
      // Another process finished the same model first: keep theirs.
      if (!existsSync(join(dir, 'complete'))) throw e;
      rmSync(tmp, { recursive: true, force: true });
    }
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}
