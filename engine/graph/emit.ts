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
  type GraphProto,
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
  const part = section(graph, opset);
  const base = {
    key: part.key,
    inputs: part.inputs,
    outputs: part.outputs,
    weightBytes: weightBytesOf(part.weights),
    nodeCount: part.writer.nodeCount,
  };
  const encode = (protos: TensorProto[]) => ModelProto.encode(part.writer.model(protos)).finish();
  return { ...base, model: store(graph.name, part.key, part.weights, encode, options) };
}

/** Where the models of a bundle say which of their graphs to run. */
export const BUNDLE_ENTRY = 'entry';

export interface EmittedBundle {
  key: string;
  model: EmittedModel['model'];
  /** per graph, its inputs and outputs as the graph names them; the model's are `<graph>.<name>` */
  entries: { name: string; inputs: ValueSpec[]; outputs: ValueSpec[] }[];
  weightBytes: number;
  nodeCount: number;
}

/**
 * Several graphs over the same weights as one model: an int64 scalar input `entry` picks the
 * graph that runs (an If node per graph; the others produce empty outputs), and each weight is
 * stored, loaded and mapped once however many graphs read it. onnxruntime runs every node of
 * a session and cannot share weights between sessions from Node, so this is how a forward
 * pass and a gradient pass of one network live in one copy of its weights.
 */
export function emitBundle(name: string, graphs: readonly Graph[], options: EmitOptions = {}): EmittedBundle {
  const opset = options.opset ?? DEFAULT_OPSET;
  if (new Set(graphs.map((g) => g.name)).size !== graphs.length)
    throw new GraphError(`bundle '${name}': its graphs need distinct names`);
  const parts = graphs.map((g) => section(g, opset, g.name));
  const weights = new Map<string, WeightEntry>();
  for (const part of parts) {
    for (const w of part.weights) {
      const seen = weights.get(w.proto.name!);
      if (!seen) weights.set(w.proto.name!, w);
      else if (seen.tensor.leaf.data.fingerprint !== w.tensor.leaf.data.fingerprint) {
        throw new GraphError(`bundle '${name}': two graphs hold different weights named '${w.proto.name}'`);
      }
    }
  }
  const entries = [...weights.values()];
  const encode = (protos: TensorProto[]) =>
    ModelProto.encode(bundleModel(name, parts, opset, protos)).finish();
  // the bundle's own structure (its switch and empty branches) and each graph's key
  const key = createHash('sha256')
    .update(encode(entries.map((w) => w.proto)))
    .update(parts.map((p) => p.key).join('\0'))
    .digest('hex')
    .slice(0, 32);
  return {
    key,
    model: store(name, key, entries, encode, options),
    entries: parts.map((p, i) => ({ name: graphs[i].name, inputs: p.inputs, outputs: p.outputs })),
    weightBytes: weightBytesOf(entries),
    nodeCount: parts.reduce((sum, p) => sum + p.writer.nodeCount, 0),
  };
}

interface Section {
  writer: Writer;
  /** hash of the graph's structure and its weights' fingerprints */
  key: string;
  inputs: ValueSpec[];
  outputs: ValueSpec[];
  weights: WeightEntry[];
}

/** A graph's nodes, constants and weight references, written with names under `scope` when given. */
function section(graph: Graph, opset: number, scope?: string): Section {
  if (opset < 17) throw new GraphError(`opset ${opset} is too old: the graph layer emits opset 17 or newer`);
  if (graph.outputs.length === 0)
    throw new GraphError(`graph '${graph.name}' has no outputs; call graph.output()`);
  const writer = new Writer(graph, opset, scope);
  for (const node of reachableNodes(graph)) {
    const before = writer.nodeCount;
    node.op.emit(node, writer);
    if (writer.nodeCount === before) throw new GraphError(`${node.op.name}: emitted no ONNX node`);
  }
  writer.finishOutputs();
  const weights = writer.weights();
  // Structure first, weights as bare references: this is what the cache key covers.
  const hash = createHash('sha256').update(
    ModelProto.encode(writer.model(weights.map((w) => w.proto))).finish(),
  );
  for (const w of weights) hash.update(`\0${w.proto.name}\0${w.tensor.leaf.data.fingerprint}`);
  return {
    writer,
    key: hash.digest('hex').slice(0, 32),
    inputs: graph.inputs.map(spec),
    outputs: graph.outputs.map(({ name, tensor }) => ({
      name,
      dtype: tensor.dtype,
      shape: [...tensor.shape],
    })),
    weights,
  };
}

function weightBytesOf(weights: readonly WeightEntry[]): number {
  return weights.reduce((sum, w) => sum + w.tensor.leaf.data.byteLength, 0);
}

/** The model bytes with the weights inside, or the cached folder's model.onnx with its weights file. */
function store(
  name: string,
  key: string,
  weights: WeightEntry[],
  encode: (protos: TensorProto[]) => Uint8Array,
  options: EmitOptions,
): EmittedModel['model'] {
  const threshold = options.externalDataThreshold ?? 256 * 1024 * 1024;
  const weightBytes = weightBytesOf(weights);
  if (weightBytes <= threshold) {
    for (const w of weights) w.proto.rawData = w.tensor.leaf.data.read();
    return encode(weights.map((w) => w.proto));
  }
  if (!options.cacheDir) {
    throw new GraphError(
      `graph '${name}' has ${(weightBytes / 2 ** 20).toFixed(0)} MiB of weights, over the in-memory limit: set a cache directory for external data`,
    );
  }
  const dir = join(options.cacheDir, `${name}-${key}`);
  const path = join(dir, 'model.onnx');
  if (existsSync(join(dir, 'complete'))) return { path, reused: true };
  writeExternal(dir, weights, encode);
  return { path, reused: false };
}

/** The bundle's main graph: the entry switch, one If per graph, the shared weights. */
function bundleModel(name: string, parts: Section[], opset: number, weights: TensorProto[]): ModelProto {
  const T = AttributeProto_AttributeType;
  const nodes: NodeProto[] = [];
  const constants: TensorProto[] = [];
  const inputs: ValueInfoProto[] = [valueInfo(BUNDLE_ENTRY, 'int64', [])];
  const outputs: ValueInfoProto[] = [];
  const domains = new Set<string>();
  parts.forEach((part, i) => {
    const scope = part.writer.scope!;
    const index = `${scope}/index`;
    const chosen = `${scope}/chosen`;
    constants.push({
      name: index,
      dataType: onnxDataType('int64'),
      dims: [],
      rawData: encodeValues([i], 'int64'),
    });
    nodes.push({
      opType: 'Equal',
      name: `${scope}/Equal`,
      input: [BUNDLE_ENTRY, index],
      output: [chosen],
      attribute: [],
    });
    nodes.push({
      opType: 'If',
      name: `${scope}/If`,
      input: [chosen],
      output: part.outputs.map((o) => `${scope}.${o.name}`),
      attribute: [
        { name: 'then_branch', type: T.GRAPH, g: part.writer.body() },
        { name: 'else_branch', type: T.GRAPH, g: emptyOutputs(`${scope}/none`, part.outputs) },
      ],
    });
    for (const d of part.writer.usedDomains()) domains.add(d);
    for (const t of part.inputs) inputs.push(valueInfo(`${scope}.${t.name}`, t.dtype, t.shape, `${scope}.`));
    // what a graph returns depends on which graph ran: every axis is left free
    for (const o of part.outputs)
      outputs.push(
        valueInfo(
          `${scope}.${o.name}`,
          o.dtype,
          o.shape.map((_, axis) => ({ param: `${scope}.${o.name}.${axis}` })),
        ),
      );
  });
  return {
    irVersion: IR_VERSION,
    producerName: 'clora-bot',
    opsetImport: [
      { domain: '', version: opset },
      ...[...domains].sort().map((domain) => ({ domain, version: 1 })),
    ],
    graph: { name, node: nodes, initializer: [...weights, ...constants], input: inputs, output: outputs },
  };
}

/** A branch that returns, for each output, an empty tensor of its dtype and rank (a zero scalar for rank 0). */
function emptyOutputs(scope: string, outputs: ValueSpec[]): GraphProto {
  const initializer: TensorProto[] = [];
  const node: NodeProto[] = [];
  const output: ValueInfoProto[] = [];
  outputs.forEach((o, k) => {
    const dims = o.shape.map((d, axis) => (axis === 0 ? 0 : isStatic(d) ? d : 1));
    const size = dims.reduce((a, b) => a * b, 1);
    const source = `${scope}/empty_${k}`;
    const name = `${scope}/${o.name}`;
    initializer.push({
      name: source,
      dataType: onnxDataType(o.dtype),
      dims,
      rawData: encodeValues(new Array(size).fill(0), o.dtype),
    });
    node.push({
      opType: 'Identity',
      name: `${scope}/Identity_${k}`,
      input: [source],
      output: [name],
      attribute: [],
    });
    output.push(valueInfo(name, o.dtype, dims));
  });
  return { name: scope, node, initializer, input: [], output };
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

  /**
   * `scope` writes the graph as one branch of a bundle: its inputs are the bundle's
   * `<scope>.<input>`, everything it defines is named `<scope>/…`; weights keep their names.
   */
  constructor(
    private readonly graph: Graph,
    readonly opset: number,
    readonly scope?: string,
  ) {
    for (const t of graph.inputs) this.claim(t, this.inputName((t.leaf as { name: string }).name));
    // Outputs take their public names where the tensor is produced inside the graph.
    for (const { name, tensor } of graph.outputs) {
      if (!tensor.leaf && !this.names.has(tensor.id)) this.claim(tensor, this.scoped(name));
    }
  }

  private inputName(name: string): string {
    return this.scope === undefined ? name : `${this.scope}.${name}`;
  }

  private scoped(name: string): string {
    return this.scope === undefined ? name : `${this.scope}/${name}`;
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
    return this.claim(t, this.scoped(`t${t.id}`));
  };

  fresh(hint: string): string {
    let name: string;
    do name = this.scoped(`${hint}_${this.counter++}`);
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
      name: this.scoped(`${opType}_${this.nodes.length}`),
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
      const published = this.scoped(name);
      if (source !== published) this.node('Identity', [source], [published]);
    }
  }

  usedDomains(): ReadonlySet<string> {
    return this.domains;
  }

  /** The graph as a bundle's branch: its nodes and constants; inputs and weights come from the main graph. */
  body(): GraphProto {
    return {
      name: this.scoped(this.graph.name),
      node: this.nodes,
      initializer: this.constants,
      input: [],
      output: this.graph.outputs.map(({ name, tensor }) =>
        valueInfo(this.scoped(name), tensor.dtype, tensor.shape, `${this.scope}.`),
      ),
    };
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

/** `dimPrefix` keeps one bundle graph's symbolic sizes apart from another's; `{param}` names a free axis. */
function valueInfo(
  name: string,
  dtype: DType,
  shape: readonly (Dim | { param: string })[],
  dimPrefix = '',
): ValueInfoProto {
  const dim = (d: Dim | { param: string }) =>
    typeof d === 'object' && 'param' in d
      ? { dimParam: d.param }
      : isStatic(d)
        ? { dimValue: d }
        : { dimParam: `${dimPrefix}${dimStr(d)}` };
  return { name, type: { tensorType: { elemType: onnxDataType(dtype), shape: { dim: shape.map(dim) } } } };
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
