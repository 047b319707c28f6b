// Reverse-mode differentiation: walk the nodes that lie on a path from the chosen inputs
// to the chosen outputs in reverse order, and let each op's own VJP rule map output
// gradients to input gradients. Everything else lives in the ops.

import { isFloat } from './dtype.ts';
import { GraphError, type Node, type Tensor } from './graph.ts';
import { add } from './ops/elementwise.ts';
import { expand, zeros } from './ops/shape.ts';

/**
 * Gradients of `outputs` with respect to `wrt`, added to the same graph. With no seeds
 * each output must be a scalar (its seed is 1); otherwise seeds[i] has outputs[i]'s shape.
 * An input that does not reach any output gets a zero gradient.
 */
export function grad(
  outputs: readonly Tensor[],
  wrt: readonly Tensor[],
  seeds?: readonly Tensor[],
): Tensor[] {
  if (outputs.length === 0) throw new GraphError('grad: give at least one output to differentiate');
  const graph = outputs[0].graph;
  for (const t of [...outputs, ...wrt, ...(seeds ?? [])]) {
    if (t.graph !== graph) throw new GraphError('grad: all tensors must belong to the same graph');
  }
  for (const t of wrt) {
    if (!isFloat(t.dtype)) {
      throw new GraphError(
        `grad: cannot differentiate with respect to ${t.describe()}: it is ${t.dtype}; choose a float input`,
      );
    }
  }
  for (const t of outputs) {
    if (!isFloat(t.dtype)) throw new GraphError(`grad: output ${t.describe()} is not a float tensor`);
  }
  if (seeds && seeds.length !== outputs.length) {
    throw new GraphError(`grad: ${seeds.length} seeds for ${outputs.length} outputs`);
  }

  // Only nodes downstream of wrt and upstream of outputs take part.
  const active = new Set<number>(wrt.map((t) => t.id));
  const snapshot = [...graph.nodes];
  for (const n of snapshot) {
    if (n.inputs.some((t) => active.has(t.id))) for (const o of n.outputs) active.add(o.id);
  }
  const needed = new Set<number>(outputs.map((t) => t.id));
  const onPath: Node[] = [];
  for (let i = snapshot.length - 1; i >= 0; i--) {
    const n = snapshot[i];
    if (!n.outputs.some((o) => needed.has(o.id) && active.has(o.id))) continue;
    onPath.push(n);
    for (const t of n.inputs) if (active.has(t.id)) needed.add(t.id);
  }

  const grads = new Map<number, Tensor>();
  const accumulate = (t: Tensor, g: Tensor) => {
    const prev = grads.get(t.id);
    grads.set(t.id, prev ? add(prev, g) : g);
  };
  outputs.forEach((out, i) => {
    const seed = seeds?.[i];
    if (seed) {
      if (seed.dtype !== out.dtype || seed.rank !== out.rank) {
        throw new GraphError(`grad: seed ${seed.describe()} does not match output ${out.describe()}`);
      }
      accumulate(out, seed);
    } else {
      if (out.rank !== 0 && !out.shape.every((d) => d === 1)) {
        throw new GraphError(`grad: output ${out.describe()} is not a scalar; reduce it or give a seed`);
      }
      accumulate(out, expand(graph.scalar(1, out.dtype), out.shape));
    }
  });

  for (const n of onPath) {
    const outGrads = n.outputs.map((o) => grads.get(o.id));
    if (outGrads.every((g) => !g)) continue;
    const nondiff = new Set(n.op.nondiff ?? []);
    const wanted = n.inputs.map((t, i) => active.has(t.id) && !nondiff.has(i) && isFloat(t.dtype));
    if (!wanted.some(Boolean)) continue;
    if (!n.op.vjp) {
      throw new GraphError(
        `grad: ${n.op.name} has no gradient rule, but lies between the inputs and the outputs`,
      );
    }
    const inGrads = n.op.vjp(n, outGrads, wanted);
    n.inputs.forEach((t, i) => {
      const g = inGrads[i];
      if (g && wanted[i]) accumulate(t, g);
    });
  }

  return wrt.map((t) => grads.get(t.id) ?? zeros(graph, t.shape, t.dtype));
}
