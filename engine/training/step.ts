// One compiled training step: a graph whose trainable weights are inputs (see
// ModelContext.trainable), its loss, and the loss's gradient for every such weight in one
// run; the host then applies the optimiser to the live parameters.

import type { CompiledModel, HostTensor, RunnerOptions, Tensor } from '../graph/index.ts';
import * as G from '../graph/index.ts';
import type { AdamW } from './adamw.ts';
import type { TensorStore } from './tensor-store.ts';

export interface StepResult {
  loss: number;
  gradientNorm: number;
  /** every other output, by name */
  outputs: Record<string, HostTensor>;
}

export class TrainingStep {
  private constructor(
    private readonly model: CompiledModel,
    /** parameter name in the store → graph input name */
    private readonly inputNames: ReadonlyMap<string, string>,
    private readonly params: TensorStore,
    private readonly reported: readonly string[],
  ) {}

  /**
   * Differentiates `loss` with respect to every graph input named `namespace + name` for a
   * parameter of `params`, and compiles loss, gradients and `report` into one session.
   */
  static async compile(
    graph: G.Graph,
    loss: Tensor,
    params: TensorStore,
    options: RunnerOptions & { namespace?: string; report?: Record<string, Tensor> } = {},
  ): Promise<TrainingStep> {
    const namespace = options.namespace ?? '';
    const byName = new Map(graph.inputs.map((t) => [(t.leaf as { name: string }).name, t]));
    const inputNames = new Map<string, string>();
    const wrt: Tensor[] = [];
    for (const name of params.names()) {
      const t = byName.get(`${namespace}${name}`);
      if (!t) continue;
      inputNames.set(name, `${namespace}${name}`);
      wrt.push(t);
    }
    if (wrt.length === 0) throw new Error(`${graph.name}: no parameter of ${params.label} is a graph input`);
    const grads = G.grad([loss], wrt);
    graph.output('loss', loss);
    [...inputNames.keys()].forEach((name, i) => {
      graph.output(`grad.${name}`, G.cast(grads[i], 'float32'));
    });
    const report = options.report ?? {};
    for (const [name, t] of Object.entries(report)) graph.output(name, t);
    const model = await G.compile(graph, options);
    return new TrainingStep(model, inputNames, params, Object.keys(report));
  }

  /** Parameters that receive a gradient. */
  get trained(): string[] {
    return [...this.inputNames.keys()];
  }

  /** Runs the graph on `feeds` and the current parameters, then takes one optimiser step. */
  async run(feeds: Record<string, HostTensor>, optimiser: AdamW, learningRate: number): Promise<StepResult> {
    const { loss, grads, outputs } = await this.evaluate(feeds);
    const gradientNorm = optimiser.update(grads, learningRate);
    return { loss, gradientNorm, outputs };
  }

  /** Loss, gradients and reports without touching the parameters. */
  async evaluate(
    feeds: Record<string, HostTensor>,
  ): Promise<{ loss: number; grads: Map<string, Float32Array>; outputs: Record<string, HostTensor> }> {
    const all: Record<string, HostTensor> = { ...feeds };
    for (const [name, input] of this.inputNames) {
      all[input] = G.hostTensor('float32', this.params.float32(name), this.params.shape(name));
    }
    const out = await this.model.run(all);
    const grads = new Map<string, Float32Array>();
    for (const name of this.inputNames.keys()) grads.set(name, out[`grad.${name}`].data as Float32Array);
    const outputs: Record<string, HostTensor> = {};
    for (const name of this.reported) outputs[name] = out[name];
    return { loss: (out.loss.data as Float32Array)[0], grads, outputs };
  }

  async release(): Promise<void> {
    await this.model.release();
  }
}
