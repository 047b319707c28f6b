// Runs the cases of a reference fixture directory (reference/cases.json + tensors) through
// the engine. Everything — widths, heads, latent size, prompts, LoRAs, schedules — is read
// from the directory, so any fixture of this format runs, not only ours.

import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { concatRows } from '../../engine/clora/batch.ts';
import { Engine } from '../../engine/clora/engine.ts';
import { compileDenoiseUNet } from '../../engine/clora/graphs.ts';
import { type ConceptGroups, groupFeeds, lossOnlyGraph } from '../../engine/clora/loss.ts';
import { branchMasks, fuseNoise, guide, mapsFromAggregate, resizeNearest } from '../../engine/clora/masks.ts';
import { runPlan } from '../../engine/clora/pipeline.ts';
import type { Branch, CompositionPlan } from '../../engine/clora/plan.ts';
import { defaultGuidance } from '../../engine/clora/spec.ts';
import * as G from '../../engine/graph/index.ts';
import { type GatedLora, LoraSlots, loraFeeds } from '../../engine/lora/gated.ts';
import { createScheduler, type SamplerName } from '../../engine/schedulers/index.ts';
import { ClipTokenizer } from '../../engine/tokenizer/index.ts';
import { openCheckpoint } from '../../engine/weights/checkpoint.ts';
import { SafetensorsFile } from '../../engine/weights/safetensors.ts';
import { type Check, compareArrays, compareValues, Tolerances } from './compare.ts';

// biome-ignore lint/suspicious/noExplicitAny: cases.json is free-form JSON, read field by field
type Json = any;

export interface Fixture {
  dir: string;
  spec: Json;
}

export function readFixture(dir: string): Fixture {
  const abs = resolve(dir);
  const path = join(abs, 'reference', 'cases.json');
  let spec: Json;
  try {
    spec = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(
      `${path}: cannot read the case list (${(e as Error).message}); give a fixture directory with reference/cases.json`,
    );
  }
  if (!Array.isArray(spec.cases)) throw new Error(`${path}: has no "cases" array`);
  return { dir: abs, spec };
}

/**
 * `relative` under `dir`, following link files on the way: a fixture may stand for a folder of
 * another fixture by a small text file holding its relative path (a symbolic link stored as text).
 */
export function fixturePath(dir: string, relative: string): string {
  let at = resolve(dir);
  for (const part of relative.split(/[\\/]/).filter(Boolean)) {
    at = join(at, part);
    for (
      let hops = 0;
      hops < 8 && existsSync(at) && statSync(at).isFile() && statSync(at).size < 1024;
      hops++
    ) {
      const target = resolve(dirname(at), readFileSync(at, 'utf8').trim());
      if (target.includes('\0') || !existsSync(target)) break;
      at = target;
    }
  }
  return at;
}

/** A case's latent size, height × width: its own fields, its params', else the fixture's, square or not. */
export function latentSize(c: Json, fixture: Fixture): { height: number; width: number } {
  for (const o of [c, c?.params, fixture.spec]) {
    if (!o) continue;
    if (typeof o.latent_height === 'number' && typeof o.latent_width === 'number')
      return { height: o.latent_height, width: o.latent_width };
    if (typeof o.latent_size === 'number') return { height: o.latent_size, width: o.latent_size };
  }
  throw new Error(
    `case '${c?.id}' states no latent size: give latent_size, or latent_height and latent_width`,
  );
}

class Context {
  private enginePromise?: Promise<Engine>;
  private readonly files = new Map<string, SafetensorsFile>();

  constructor(
    readonly fixture: Fixture,
    /** extra tolerance for the long chains (CLoRA run, 50-step traces); the README allows 3–10 */
    readonly longChainFactor = 1,
  ) {}

  get dir(): string {
    return this.fixture.dir;
  }

  engine(): Promise<Engine> {
    this.enginePromise ??= Engine.load({ modelPath: fixturePath(this.dir, 'model') });
    return this.enginePromise;
  }

  /** A reference tensor file; `name` may be `file.safetensors` or `file.safetensors:key` handled by tensor(). */
  file(name: string): SafetensorsFile {
    let f = this.files.get(name);
    if (!f) {
      f = SafetensorsFile.open(join(this.dir, 'reference', name));
      this.files.set(name, f);
    }
    return f;
  }

  /** `key` in the case's file, or `other.safetensors:key`. */
  tensor(caseFile: string, ref: string): Float32Array {
    const [file, key] = ref.includes(':') ? ref.split(':') : [caseFile, ref];
    return this.file(file).float32(key.trim().split(/\s+/)[0]);
  }

  ints(caseFile: string, key: string): number[] {
    const f = this.file(caseFile);
    const name = key.trim().split(/\s+/)[0];
    const raw = f.readRaw(name);
    const info = f.info(name);
    if (info.dtype === 'I64')
      return [...new BigInt64Array(raw.buffer, raw.byteOffset, raw.byteLength / 8)].map(Number);
    if (info.dtype === 'I32') return [...new Int32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4)];
    return [...f.float32(name)];
  }

  /** `actual` against the case's stored output `name`, at the case's tolerance for it. */
  against(c: Json, tol: Tolerances, name: string, actual: ArrayLike<number>): Check {
    return compareArrays(c.id, name, actual, this.tensor(c.file, name), tol.for(name));
  }

  shape(caseFile: string, key: string): number[] {
    return this.file(caseFile).info(key).shape;
  }

  lora(relative: string) {
    return { name: relative, path: fixturePath(this.dir, relative) };
  }

  async close(): Promise<void> {
    if (this.enginePromise) await (await this.enginePromise).close();
    for (const f of this.files.values()) f.close();
  }
}

type Handler = (c: Json, ctx: Context) => Promise<Check[]>;

function idsTensor(ids: readonly number[], rows: number): ort.Tensor {
  return new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [rows, ids.length / rows]);
}

const tokenizer: Handler = async (c, ctx) => {
  const tok = ClipTokenizer.fromDir(fixturePath(ctx.dir, 'model/tokenizer'));
  const prompts: Json[] = c.prompts;
  const encoded = prompts.map((p) => tok.encode(p.prompt));
  const stored = c.file ? ctx.ints(c.file, 'input_ids') : undefined;
  /** One field of each prompt's encoding, ours against the case's (they share field names). */
  const same = (name: string, field: (encoding: Json) => unknown) =>
    compareValues(c.id, name, encoded.map(field), prompts.map(field));
  const strip = (xs: Json[], key: string) =>
    xs.map((x) => ({ [key]: x[key], positions: x.positions, ids: x.ids }));
  return [
    compareArrays(
      c.id,
      'input_ids',
      encoded.flatMap((e) => e.ids),
      stored ?? prompts.flatMap((p) => p.ids_padded_77),
      'exact',
    ),
    compareArrays(
      c.id,
      'ids_untruncated',
      encoded.flatMap((e) => e.idsUntruncated),
      prompts.flatMap((p) => p.ids_untruncated),
      'exact',
    ),
    same('tokens', (e) => e.tokens),
    same('truncated', (e) => e.truncated),
    same('words', (e) => strip(e.words, 'word')),
    same('pieces', (e) => strip(e.pieces, 'piece')),
  ];
};

const textEncoder: Handler = async (c, ctx) => {
  const engine = await ctx.engine();
  const te = engine.models().textEncoder;
  const ids = ctx.ints(c.file, 'input_ids');
  const rows = ids.length / 77;
  const tol = new Tolerances(c.tolerance ?? {});
  const lora = c.lora ? engine.loadLora(ctx.lora(c.lora.file)) : undefined;
  const checks: Check[] = [];
  for (const output of Object.keys(c.outputs)) {
    const scale = /_scale_([\d.]+)$/.exec(output);
    const weight = scale ? Number(scale[1]) : 0;
    const loras: GatedLora[] =
      lora && weight ? [{ modules: lora.modules, weights: new Array(rows).fill(weight) }] : [];
    const out = await te.model.run({ input_ids: idsTensor(ids, rows), ...loraFeeds(te.slots!, loras, rows) });
    checks.push(ctx.against(c, tol, output, out.hidden.data as Float32Array));
  }
  return checks;
};

/** A UNet input given in cases.json: a number, or a tensor key (with an optional annotation). */
function unetInput(
  c: Json,
  ctx: Context,
  key: string,
): { values: Float32Array; shape: number[] } | undefined {
  const ref = c.inputs?.[key];
  if (ref === undefined) return undefined;
  if (typeof ref === 'number') return { values: Float32Array.of(ref), shape: [] };
  const name = String(ref).split(/\s+/)[0];
  const [file, k] = name.includes(':') ? name.split(':') : [c.file, name];
  const info = ctx.file(file).info(k);
  const values = info.dtype.startsWith('I')
    ? Float32Array.from(ctx.ints(file, k))
    : ctx.file(file).float32(k);
  return { values, shape: info.shape };
}

function unetFeeds(
  sample: Float32Array,
  sampleShape: number[],
  t: Float32Array,
  context: Float32Array,
  contextShape: number[],
) {
  const batch = sampleShape[0];
  const timestep = t.length === batch ? t : new Float32Array(batch).fill(t[0]);
  return {
    sample: G.hostTensor('float32', sample, sampleShape),
    timestep: G.hostTensor('float32', timestep, [batch]),
    context: G.hostTensor('float32', context, contextShape),
  };
}

const unet: Handler = async (c, ctx) => {
  const engine = await ctx.engine();
  const tol = new Tolerances(c.tolerance ?? {});
  const variants = new Map<string, Json>(c.variants.map((v: Json) => [v.name, v]));
  const checks: Check[] = [];
  for (const output of Object.keys(c.outputs)) {
    const m = /^noise_pred_(\d+)\.(.+)$/.exec(output);
    if (!m) {
      checks.push({
        ...compareValues(c.id, output, 'unknown output', 'noise_pred_<set>.<variant>'),
        note: 'output not understood',
      });
      continue;
    }
    const [, set, name] = m;
    const v = variants.get(name);
    const sample = unetInput(c, ctx, `latent_${set}`)!;
    const t = unetInput(c, ctx, `timestep_${set}`) ?? unetInput(c, ctx, `timesteps_${set}`)!;
    const context = unetInput(c, ctx, `encoder_hidden_states_${set}`)!;
    const batch = sample.shape[0];
    const files = Object.values(v?.loras ?? {}) as string[];
    const scale = v?.cross_attention_scale ?? 1;
    const loras: GatedLora[] = files.map((file, i) => {
      const lora = engine.loadLora(ctx.lora(file));
      return { modules: lora.modules, weights: new Array(batch).fill((v.adapter_weights?.[i] ?? 1) * scale) };
    });
    const loraConvs = loras.some((l) => LoraSlots.needSpatialConvs('unet', l.modules));
    const net = await engine.models().unet({ loraConvs });
    const out = await net.model.run({
      ...unetFeeds(sample.values, sample.shape, t.values, context.values, context.shape),
      ...loraFeeds(net.slots!, loras, batch),
    });
    checks.push(ctx.against(c, tol, output, out.noise.data as Float32Array));
  }
  return checks;
};

const attention: Handler = async (c, ctx) => {
  const engine = await ctx.engine();
  const tol = new Tolerances(c.tolerance ?? {});
  const { model } = await compileDenoiseUNet(engine.checkpoint, { allAttention: true });
  try {
    const sample = unetInput(c, ctx, 'latent')!;
    const t = unetInput(c, ctx, 'timestep')!;
    const context = unetInput(c, ctx, 'encoder_hidden_states')!;
    const out = await model.run(
      unetFeeds(sample.values, sample.shape, t.values, context.values, context.shape),
    );
    const checks: Check[] = [];
    for (const output of Object.keys(c.outputs)) {
      const expected = ctx.tensor(c.file, output);
      let actual: Float32Array | undefined;
      if (output === 'noise_pred') actual = out.noise.data as Float32Array;
      else if (output === 'aggregate') actual = (out.maps.data as Float32Array).subarray(0, expected.length);
      else if (output.startsWith('attn_probs.'))
        actual = out[`attn.${output.slice('attn_probs.'.length)}`]?.data as Float32Array;
      checks.push(
        actual
          ? compareArrays(c.id, output, actual, expected, tol.for(output))
          : { ...compareValues(c.id, output, 'missing', 'present'), note: 'the UNet has no such layer' },
      );
    }
    return checks;
  } finally {
    await model.release();
  }
};

function groupsFrom(json: Json): ConceptGroups {
  return Object.values(json).map((members) =>
    (members as Json[]).map((m) => ({ prompt: m.prompt, position: m.position })),
  );
}

const cloraLoss: Handler = async (c, ctx) => {
  const engine = await ctx.engine();
  const tol = new Tolerances(c.tolerance ?? {});
  const models = engine.models();
  const checks: Check[] = [];
  const temperature = c.inputs.temperature ?? 0.5;
  const ids = ctx.ints(c.file, 'input_ids');
  const rows = ids.length / 77;
  const te = models.textEncoder;
  const hidden = (await te.model.run({ input_ids: idsTensor(ids, rows), ...loraFeeds(te.slots!, [], rows) }))
    .hidden.data as Float32Array;
  checks.push(ctx.against(c, tol, 'encoder_hidden_states', hidden));

  const latentShape = ctx.shape(c.file, 'latent');
  const guidance = await models.guidance({ loraConvs: false });
  const run = await guidance.model.run({
    latent: G.hostTensor('float32', ctx.tensor(c.file, 'latent'), latentShape),
    timestep: G.hostTensor('float32', new Float32Array(rows).fill(c.inputs.timestep), [rows]),
    context: G.hostTensor('float32', hidden, [rows, 77, hidden.length / rows / 77]),
    ...groupFeeds(groupsFrom(c.inputs.groups), rows),
    ...loraFeeds(guidance.slots!, [], rows),
  });
  checks.push(ctx.against(c, tol, 'aggregate', run.maps.data as Float32Array));
  checks.push(
    compareArrays(c.id, 'loss', run.loss.data as Float32Array, ctx.tensor(c.file, 'loss'), tol.for('loss')),
  );
  checks.push(ctx.against(c, tol, 'grad_latent', run.grad.data as Float32Array));

  const lossModel = await G.compile(lossOnlyGraph(temperature));
  try {
    const mapsFeed = (data: Float32Array) => {
      const shape = ctx.shape(c.file, 'aggregate');
      const t = shape[shape.length - 1];
      return G.hostTensor('float32', data, [shape[0], data.length / shape[0] / t, t]);
    };
    const onAggregate = await lossModel.run({
      maps: mapsFeed(ctx.tensor(c.file, 'aggregate')),
      ...groupFeeds(groupsFrom(c.inputs.groups), rows),
    });
    checks.push(ctx.against(c, tol, 'embeddings', onAggregate.embeddings.data as Float32Array));
    checks.push(ctx.against(c, tol, 'grad_aggregate', onAggregate.grad_maps.data as Float32Array));
    for (const [label, groups] of [
      ['loss_only_groups', c.inputs.groups],
      ['clora_groups', c.inputs.clora_groups],
    ] as const) {
      if (!groups) continue;
      const out = await lossModel.run({
        maps: mapsFeed(ctx.tensor(c.file, 'random_maps')),
        ...groupFeeds(groupsFrom(groups), rows),
      });
      for (const [kind, data] of [
        ['loss', out.loss.data],
        ['grad', out.grad_maps.data],
      ] as const) {
        const key = `random_maps.${kind}.${label}`;
        checks.push(compareArrays(c.id, key, data as Float32Array, ctx.tensor(c.file, key), tol.for(key)));
      }
    }
  } finally {
    await lossModel.release();
  }
  return checks;
};

function samplerFor(run: Json): SamplerName {
  const cls: string = run.scheduler_class;
  if (cls.startsWith('DDIM')) return 'ddim';
  if (cls.startsWith('EulerAncestral')) return 'euler_a';
  if (cls.startsWith('EulerDiscrete')) return 'euler';
  if (cls.startsWith('DPMSolverMultistep'))
    return run.config?.use_karras_sigmas ? 'dpmpp_2m_karras' : 'dpmpp_2m';
  if (cls.startsWith('PNDM')) return 'pndm';
  throw new Error(`no sampler reproduces ${cls}`);
}

const scheduler: Handler = async (c, ctx) => {
  const checks: Check[] = [];
  const noise = ctx.tensor(c.file, String(c.inputs.initial_noise));
  const { a, b } = c.fake_model;
  for (const run of c.runs as Json[]) {
    const label = `${run.name}.${run.num_inference_steps}`;
    const tol = new Tolerances(c.tolerance ?? {}, run.num_inference_steps >= 50 ? ctx.longChainFactor : 1);
    const s = createScheduler(samplerFor(run), run.config);
    s.setTimesteps(run.num_inference_steps);
    const keyOf = (k: string) => String(run.keys[k]).split(/\s+/)[0];
    const timestepKey = keyOf('timesteps');
    const storedTimesteps = ctx.file(c.file).info(timestepKey).dtype.startsWith('I')
      ? ctx.ints(c.file, timestepKey)
      : ctx.tensor(c.file, timestepKey);
    checks.push(compareArrays(c.id, timestepKey, s.timesteps, storedTimesteps, { atol: 1e-4 }));
    if (run.keys.sigmas && s.sigmas) {
      checks.push(
        compareArrays(c.id, keyOf('sigmas'), s.sigmas, ctx.tensor(c.file, keyOf('sigmas')), { atol: 1e-5 }),
      );
    }
    checks.push(
      compareArrays(c.id, `${label}.init_noise_sigma`, [s.initNoiseSigma], [run.init_noise_sigma], {
        atol: 1e-6,
      }),
    );
    let x: Float32Array = Float32Array.from(noise, (v) => v * s.initNoiseSigma);
    const latents: Float32Array[] = [x];
    const inputs: Float32Array[] = [];
    s.timesteps.forEach((t, i) => {
      const xin = s.scaleModelInput(x, t);
      inputs.push(xin.slice());
      const eps = xin.map((v) => a * v + b * Math.sin(i));
      x = s.step(eps, t, x);
      latents.push(x);
    });
    checks.push(ctx.against(c, tol, keyOf('latents'), concatRows(latents)));
    checks.push(
      compareArrays(
        c.id,
        keyOf('scaled_model_inputs'),
        concatRows(inputs),
        ctx.tensor(c.file, keyOf('scaled_model_inputs')),
        tol.for(keyOf('latents')),
      ),
    );
  }
  return checks;
};

const vae: Handler = async (c, ctx) => {
  const engine = await ctx.engine();
  const tol = new Tolerances(c.tolerance ?? {});
  const latents = ctx.tensor(c.file, 'latents');
  const out = await engine
    .models()
    .vae.model.run({ latents: G.hostTensor('float32', latents, ctx.shape(c.file, 'latents')) });
  return [ctx.against(c, tol, 'image', out.image.data as Float32Array)];
};

function maskTokenLists(json: Json): number[][] {
  return Object.keys(json)
    .sort((x, y) => Number(x) - Number(y))
    .map((k) => (json[k] as Json[]).map((m) => (typeof m === 'number' ? m : m.position)));
}

const cloraMasks: Handler = async (c, ctx) => {
  const tol = new Tolerances(c.tolerance ?? {});
  const mapsShape = ctx.shape(c.file, 'maps'); // [branches, rows, cols, T]
  const [branches, rows, cols, tokens] = mapsShape;
  const grid = { rows, cols };
  const maps = ctx.tensor(c.file, 'maps');
  const perBranch = Array.from({ length: branches }, (_, k) =>
    mapsFromAggregate(maps, grid, tokens, k * rows * cols * tokens),
  );
  const masks = branchMasks(perBranch, maskTokenLists(c.mask_tokens), c.mask_threshold_fraction ?? 0.3);
  const size = latentSize(c, ctx.fixture);
  const resized = masks.map((m) => resizeNearest(m, grid, size.height, size.width));
  const epsShape = ctx.shape(c.file, 'eps_cond'); // [branches, 1, C, H, W]
  const channels = epsShape[2];
  const split = (data: Float32Array) =>
    Array.from({ length: branches }, (_, k) =>
      data.subarray((k * data.length) / branches, ((k + 1) * data.length) / branches),
    );
  const eu = fuseNoise(split(ctx.tensor(c.file, 'eps_uncond')), resized, channels);
  const ec = fuseNoise(split(ctx.tensor(c.file, 'eps_cond')), resized, channels);
  const guided = guide(eu, ec, c.guidance_scale);
  return [
    compareArrays(c.id, 'masks_lowres', concatRows(masks), ctx.tensor(c.file, 'masks_lowres'), 'exact'),
    compareArrays(c.id, 'masks', concatRows(resized), ctx.tensor(c.file, 'masks'), 'exact'),
    compareArrays(
      c.id,
      'eps_uncond_masked',
      eu,
      ctx.tensor(c.file, 'eps_uncond_masked'),
      tol.for('eps_guided'),
    ),
    compareArrays(c.id, 'eps_cond_masked', ec, ctx.tensor(c.file, 'eps_cond_masked'), tol.for('eps_guided')),
    compareArrays(c.id, 'eps_guided', guided, ctx.tensor(c.file, 'eps_guided'), tol.for('eps_guided')),
  ];
};

/** Keeps the first `keep` tokens of maps laid out [..., T]. */
function firstTokens(data: Float32Array, tokens: number, keep: number): Float32Array {
  const rows = data.length / tokens;
  const out = new Float32Array(rows * keep);
  for (let r = 0; r < rows; r++) out.set(data.subarray(r * tokens, r * tokens + keep), r * keep);
  return out;
}

const clora: Handler = async (c, ctx) => {
  const engine = await ctx.engine();
  const p = c.params;
  const tol = new Tolerances(c.tolerance ?? {}, ctx.longChainFactor);
  const tok = engine.tokenizer;
  const branches: Branch[] = (c.prompts as string[]).map((prompt, i) => {
    const adapter = p.prompt_adapters[i];
    return {
      prompt,
      tokens: tok.encode(prompt),
      loras: adapter
        ? [
            {
              lora: ctx.lora(c.loras[adapter].file),
              weight: p.adapter_weights?.[adapter] ?? c.loras[adapter].weight ?? 1,
            },
          ]
        : [],
    };
  });
  const plan: CompositionPlan = {
    branches,
    negative: tok.encode(c.negative_prompt ?? ''),
    groups: groupsFrom(c.groups),
    maskTokens: maskTokenLists(c.mask_tokens),
    fusion: 'masks',
    update: p.latent_update_steps > 0,
  };
  const initial = ctx.tensor(c.file, 'initial_latent');
  const size = latentSize(c, ctx.fixture);
  const traces = new Map<string, Float32Array[]>();
  await runPlan(
    engine.models(),
    plan,
    {
      steps: p.num_inference_steps,
      cfg: p.guidance_scale,
      sampler: samplerFor({ scheduler_class: p.scheduler, config: {} }),
      width: size.width * 8,
      height: size.height * 8,
      seed: 0,
      initialLatent: initial,
      textEncoderLora: true,
      guidance: {
        ...defaultGuidance(p.num_inference_steps),
        stepSize: p.latent_update_step_size,
        updateUntil: p.latent_update_steps,
        iterativeSteps: [],
        iterations: 1,
        temperature: p.temperature ?? 0.5,
        maskThreshold: p.mask_threshold_fraction,
      },
    },
    {
      trace: (name, _step, data) => {
        const list = traces.get(name) ?? [];
        list.push(data.slice());
        traces.set(name, list);
      },
    },
  );
  const checks: Check[] = [];
  const discrete = new Set(['masks', 'masks_lowres']);
  for (const key of Object.keys(c.stored)) {
    if (key === 'initial_latent' || key === 'timesteps') continue;
    const expected = ctx.tensor(c.file, key);
    const shape = ctx.shape(c.file, key);
    const actual = traces.get(key);
    if (!actual) {
      checks.push({
        ...compareValues(c.id, key, 'not produced', 'stored'),
        note: 'the pipeline produced no such intermediate',
      });
      continue;
    }
    let flat = concatRows(actual);
    if (key === 'update_maps' || key === 'mask_maps') flat = firstTokens(flat, 77, shape[shape.length - 1]);
    checks.push(compareArrays(c.id, key, flat, expected, discrete.has(key) ? 'exact' : tol.for(key)));
  }
  const timesteps = ctx.ints(c.file, 'timesteps');
  const s = createScheduler(
    samplerFor({ scheduler_class: p.scheduler, config: {} }),
    engine.checkpoint.schedulerConfig,
  );
  s.setTimesteps(p.num_inference_steps);
  checks.push(compareArrays(c.id, 'timesteps', s.timesteps, timesteps, 'exact'));
  return checks;
};

const checkpoint: Handler = async (c, ctx) => {
  const single = openCheckpoint(resolve(ctx.dir, 'reference', c.file), {
    tokenizerDir: fixturePath(ctx.dir, 'model/tokenizer'),
  });
  const folder = openCheckpoint(fixturePath(ctx.dir, 'model'));
  const checks: Check[] = [];
  const parts = [
    ['unet', single.unet.weights, folder.unet.weights],
    ['vae', single.vae.weights, folder.vae.weights],
    ['text_encoder', single.textEncoder.weights, folder.textEncoder.weights],
  ] as const;
  for (const [name, a, b] of parts) {
    const namesA = a.names().sort();
    const namesB = b.names().sort();
    const expectedCount = c.result?.report?.[name]?.n_tensors;
    checks.push(compareValues(c.id, `${name}.names`, namesA, namesB));
    if (expectedCount !== undefined)
      checks.push(compareValues(c.id, `${name}.count`, namesA.length, expectedCount));
    let maxAbs = 0;
    let shapesEqual = true;
    for (const n of namesB) {
      if (!a.has(n)) continue;
      if (JSON.stringify(a.shape(n)) !== JSON.stringify(b.shape(n))) shapesEqual = false;
      const x = a.float32(n);
      const y = b.float32(n);
      for (let i = 0; i < y.length; i++) maxAbs = Math.max(maxAbs, Math.abs(x[i] - y[i]));
    }
    checks.push(compareValues(c.id, `${name}.shapes`, shapesEqual, true));
    checks.push(compareArrays(c.id, `${name}.weights`, [maxAbs], [0], 'exact'));
  }
  return checks;
};

export const HANDLERS: Record<string, Handler> = {
  tokenizer,
  text_encoder: textEncoder,
  unet,
  attention,
  clora_loss: cloraLoss,
  scheduler,
  vae,
  clora_masks: cloraMasks,
  clora,
  checkpoint,
};

/** One failed check standing for a whole case that could not run. */
function caseFailure(id: string, note: string): Check {
  return {
    case: id,
    output: '(all)',
    maxAbs: Number.NaN,
    maxRel: Number.NaN,
    tolerance: 0,
    exact: false,
    pass: false,
    note,
  };
}

/** Runs every case (or those whose id or kind is in `only`), reporting each as it finishes. */
export async function runFixture(
  dir: string,
  options: { only?: string[]; longChainFactor?: number; onCase?: (id: string, checks: Check[]) => void } = {},
): Promise<Check[]> {
  const fixture = readFixture(dir);
  const ctx = new Context(fixture, options.longChainFactor ?? 1);
  const all: Check[] = [];
  try {
    for (const c of fixture.spec.cases as Json[]) {
      if (options.only?.length && !options.only.includes(c.id) && !options.only.includes(c.kind)) continue;
      const handler = HANDLERS[c.kind];
      let checks: Check[];
      if (!handler) checks = [caseFailure(c.id, `cannot run case kind '${c.kind}'`)];
      else {
        try {
          checks = await handler(c, ctx);
        } catch (e) {
          checks = [caseFailure(c.id, `error: ${(e as Error).message}`)];
        }
      }
      options.onCase?.(c.id, checks);
      all.push(...checks);
    }
  } finally {
    await ctx.close();
  }
  return all;
}
