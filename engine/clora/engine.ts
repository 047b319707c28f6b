// The engine as the rest of the product sees it: load a checkpoint once, keep its
// sessions and the LoRAs it has read, and turn a CompositionSpec into an image with its
// masks, maps, losses and timings.

import { statSync } from 'node:fs';
import { nativeImageSize, sideLattice } from '../architecture.ts';
import type { OptimizationLevel, Provider } from '../graph/index.ts';
import { type LoraFile, readLora } from '../lora/file.ts';
import { type AttentionKernel, DEFAULT_CHUNK_BYTES_PER_SAMPLE } from '../models/attention.ts';
import {
  type CompiledNetwork,
  compileTextEncoder,
  compileVaeDecoder,
  type ModelOptions,
} from '../models/compiled.ts';
import { ClipTokenizer } from '../tokenizer/index.ts';
import { type Checkpoint, openCheckpoint } from '../weights/checkpoint.ts';
import { type CLoraNetworks, compileCLoraUNet, compileGuidance } from './graphs.ts';
import {
  chunkedAttentionMemory,
  defaultMemoryBudget,
  MATERIALISED_ATTENTION,
  weightBytes,
} from './memory.ts';
import {
  type BatchMemory,
  type CompositionOutput,
  type EngineModels,
  type Hooks,
  runPlan,
  type UNetVariant,
} from './pipeline.ts';
import { planComposition } from './plan.ts';
import {
  type CompositionSpec,
  defaultImageSize,
  type LoraRef,
  type SpecLimits,
  validateSpec,
} from './spec.ts';

export interface EngineOptions {
  /** a diffusers folder or an SD 1.x .safetensors file */
  modelPath: string;
  tokenizerDir?: string;
  provider?: Provider;
  dtype?: 'float32' | 'float16';
  threads?: number;
  /** ONNX Runtime's graph optimisation level (default all) */
  optimization?: OptimizationLevel;
  /** text-encoder layers to skip from the end */
  clipSkip?: number;
  /** where compiled models with external weights are kept between runs */
  cacheDir?: string;
  externalDataThreshold?: number;
  /** the host's request limits (MAX_LORAS, MAX_STEPS, MAX_SIZE); without them, only what the model needs is checked */
  limits?: SpecLimits;
  /** attention kernel (default chunked: memory-efficient) */
  attention?: AttentionKernel;
  /**
   * onnxruntime's CPU memory arena (default off: an arena grows with every new shape and never
   * gives memory back, so a long-running worker's footprint crept up job by job)
   */
  memoryArena?: boolean;
  /** onnxruntime's weight prepacking (default off: weights stay mapped from the cache, one copy) */
  prepackWeights?: boolean;
  /** bytes a composition's batches may take; default: the host's memory (or the GPU's) less a margin */
  memoryBudgetBytes?: number;
}

export interface CompositionResult extends CompositionOutput {
  spec: CompositionSpec;
  prompts: string[];
}

export interface LoadTimings {
  checkpointMs: number;
  compileMs: number;
  reusedCache: boolean;
}

export class Engine {
  private readonly loras = new Map<string, { stamp: string; file: LoraFile }>();
  /** lazily compiled sessions by kind and variant */
  private readonly lazy = new Map<string, Promise<CompiledNetwork>>();
  /** the denoising, guidance and maps-VJP graphs, one session per LoRA layout */
  private readonly unets = new Map<string, Promise<CLoraNetworks>>();

  private constructor(
    readonly checkpoint: Checkpoint,
    readonly tokenizer: ClipTokenizer,
    private readonly nets: { textEncoder: CompiledNetwork; vae: CompiledNetwork },
    private readonly modelOptions: ModelOptions,
    readonly limits: SpecLimits | undefined,
    readonly loadTimings: LoadTimings,
    /** what the batches may take, and the model that estimates what they do take */
    readonly memory: BatchMemory,
  ) {}

  static async load(options: EngineOptions): Promise<Engine> {
    const t0 = performance.now();
    const checkpoint = openCheckpoint(options.modelPath, { tokenizerDir: options.tokenizerDir });
    const tokenizer = ClipTokenizer.fromDir(checkpoint.tokenizerDir);
    const t1 = performance.now();
    const modelOptions: ModelOptions = {
      provider: options.provider ?? 'cpu',
      dtype: options.dtype ?? 'float32',
      intraOpThreads: options.threads ?? 0,
      optimization: options.optimization ?? 'all',
      cacheDir: options.cacheDir,
      externalDataThreshold: options.externalDataThreshold,
      memoryArena: options.memoryArena ?? false,
      prepackWeights: options.prepackWeights ?? false,
      attention: options.attention,
      lora: true,
    };
    const [textEncoder, vae] = await Promise.all([
      compileTextEncoder(checkpoint, { ...modelOptions, clipSkip: options.clipSkip }),
      compileVaeDecoder(checkpoint, { ...modelOptions, lora: false }),
    ]);
    const timings: LoadTimings = { checkpointMs: t1 - t0, compileMs: 0, reusedCache: false };
    const elementBytes = modelOptions.dtype === 'float16' ? 2 : 4;
    const memory: BatchMemory = {
      budgetBytes: options.memoryBudgetBytes ?? defaultMemoryBudget(modelOptions.provider),
      model: {
        weightBytes: weightBytes(
          [checkpoint.unet.weights, checkpoint.textEncoder.weights, checkpoint.vae.weights],
          elementBytes,
        ),
        unet: checkpoint.unet.config,
        elementBytes,
        attention:
          modelOptions.attention === 'materialised'
            ? MATERIALISED_ATTENTION
            : chunkedAttentionMemory(modelOptions.attentionChunkBytes ?? DEFAULT_CHUNK_BYTES_PER_SAMPLE),
      },
    };
    const engine = new Engine(
      checkpoint,
      tokenizer,
      { textEncoder, vae },
      modelOptions,
      options.limits,
      timings,
      memory,
    );
    const unet = await engine.models().unet({ loraConvs: false });
    timings.compileMs = performance.now() - t1;
    timings.reusedCache = [textEncoder, vae, unet].every((n) => n.model.stats.reusedCache);
    return engine;
  }

  private variant(kind: string, v: UNetVariant, make: (o: ModelOptions) => Promise<CompiledNetwork>) {
    const key = `${kind}:${v.loraConvs}`;
    let net = this.lazy.get(key);
    if (!net) {
      net = make({ ...this.modelOptions, loraConvs: v.loraConvs });
      this.lazy.set(key, net);
      net.catch(() => this.lazy.delete(key));
    }
    return net;
  }

  private clora(v: UNetVariant): Promise<CLoraNetworks> {
    const key = String(v.loraConvs);
    let nets = this.unets.get(key);
    if (!nets) {
      nets = compileCLoraUNet(this.checkpoint, { ...this.modelOptions, loraConvs: v.loraConvs });
      this.unets.set(key, nets);
      nets.catch(() => this.unets.delete(key));
    }
    return nets;
  }

  /** The model's own image side (UNet sample_size × VAE scale factor): 512 for SD 1.5. */
  get nativeSize(): number {
    return nativeImageSize(this.checkpoint.unet.config, this.checkpoint.vae.config);
  }

  /** The lattice image sides must sit on (VAE scale factor × UNet downsampling): 64 for SD 1.x. */
  get sideLattice(): number {
    return sideLattice(this.checkpoint.unet.config, this.checkpoint.vae.config);
  }

  /** The size a request without one gets: the native size, capped by the largest allowed side. */
  get defaultSize(): number {
    const lattice = this.sideLattice;
    return defaultImageSize(this.nativeSize, { minSize: lattice, maxSize: this.limits?.maxSize }, lattice);
  }

  /** Reads a LoRA file against this checkpoint (cached until the file changes). */
  loadLora(ref: LoraRef): LoraFile {
    const st = statSync(ref.path);
    const stamp = `${st.size}:${st.mtimeMs}`;
    const hit = this.loras.get(ref.path);
    if (hit && hit.stamp === stamp) return hit.file;
    const file = readLora(ref.path, {
      unet: this.checkpoint.unet.weights,
      textEncoder: this.checkpoint.textEncoder.weights,
    });
    this.loras.set(ref.path, { stamp, file });
    return file;
  }

  /** The sessions and settings the pipeline runs on. */
  models(): EngineModels {
    const ck = this.checkpoint;
    return {
      textEncoder: this.nets.textEncoder,
      vae: this.nets.vae,
      unet: async (v) => (await this.clora(v)).denoise,
      guidance: async (v) => (await this.clora(v)).guidance,
      mapsVjp: async (v) => (await this.clora(v)).mapsVjp,
      memory: this.memory,
      publishedGuidance: (v) =>
        this.variant('published', v, (o) => compileGuidance(ck, { ...o, published: true })),
      schedulerConfig: this.checkpoint.schedulerConfig,
      latentChannels: this.checkpoint.unet.config.in_channels,
      contextDim: this.checkpoint.unet.config.cross_attention_dim,
      loadLora: async (ref) => this.loadLora(ref),
    };
  }

  async compose(spec: CompositionSpec, hooks: Hooks = {}): Promise<CompositionResult> {
    validateSpec(spec, this.limits, this.sideLattice);
    const plan = planComposition(spec, this.tokenizer);
    for (const b of plan.branches) for (const { lora } of b.loras) this.loadLora(lora); // file errors before compute
    const output = await runPlan(this.models(), plan, { ...spec }, hooks);
    return { ...output, spec, prompts: plan.branches.map((b) => b.prompt) };
  }

  async close(): Promise<void> {
    const lazy = await Promise.allSettled(this.lazy.values());
    const unets = await Promise.allSettled(this.unets.values());
    const nets = [this.nets.textEncoder, this.nets.vae];
    for (const r of lazy) if (r.status === 'fulfilled') nets.push(r.value);
    for (const r of unets) if (r.status === 'fulfilled') nets.push(...Object.values(r.value));
    this.lazy.clear();
    this.unets.clear();
    await Promise.all(nets.map((n) => n.model.release()));
  }
}
