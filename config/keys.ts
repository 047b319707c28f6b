// The configuration keys: one entry per environment variable, each with its value kind (a zod
// schema plus a sentence saying what it expects), default, description and secrecy.
import { z } from 'zod';
import { DEFAULT_COMPOSE_LIMITS } from '../commands/compose/request.ts';

/** A kind of value: how to parse it and how to say what it expects in an error. */
export interface ValueKind<S extends z.ZodType = z.ZodType> {
  schema: S;
  expects: string;
}

function kind<S extends z.ZodType>(schema: S, expects: string): ValueKind<S> {
  return { schema, expects };
}

const text = (expects = 'a non-empty string') => kind(z.string().min(1), expects);

const path = (what: string) => kind(z.string().min(1), `a path to ${what}`);

const int = (min: number, max: number) =>
  kind(z.coerce.number().int().min(min).max(max), `an integer from ${min} to ${max}`);

/** Image sides, on the engine's side lattice (VAE scale factor × UNet downsampling). */
const side = (min: number, max: number) => {
  const { sideMultiple } = DEFAULT_COMPOSE_LIMITS;
  return kind(
    z.coerce.number().int().min(min).max(max).multipleOf(sideMultiple),
    `a multiple of ${sideMultiple} from ${min} to ${max}`,
  );
};

const decimal = (min: number, max: number) =>
  kind(z.coerce.number().min(min).max(max), `a number from ${min} to ${max}`);

function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return kind(z.enum(values), `one of ${values.join(', ')}`);
}

function url(protocols: string[], what: string) {
  const schema = z
    .string()
    .refine((s) => URL.canParse(s) && protocols.includes(new URL(s).protocol), { message: 'bad URL' });
  return kind(schema, `${what} (${protocols.map((p) => `${p}//`).join(' or ')})`);
}

const snowflake = () => kind(z.string().regex(/^\d{17,20}$/), 'a Discord snowflake id (17 to 20 digits)');

const prefixedToken = (prefix: string, what: string) =>
  kind(z.string().regex(new RegExp(`^${prefix}[A-Za-z0-9-]{10,}$`)), `${what} (${prefix}…)`);

interface KeyMeta {
  description: string;
  /** How the default reads in the docs when it is computed rather than a constant. */
  defaultText?: string;
  secret?: boolean;
}

/** One configuration key; `schema` already carries its default (or is optional). */
export interface ConfigKey<S extends z.ZodType = z.ZodType> extends ValueKind<S> {
  description: string;
  defaultText?: string;
  secret: boolean;
}

function optional<S extends z.ZodType>(k: ValueKind<S>, meta: KeyMeta): ConfigKey<z.ZodOptional<S>> {
  return { ...meta, schema: k.schema.optional(), expects: k.expects, secret: meta.secret ?? false };
}

function withDefault<S extends z.ZodType>(
  k: ValueKind<S>,
  value: z.util.NoUndefined<z.output<S>>,
  meta: KeyMeta,
): ConfigKey<z.ZodDefault<S>> {
  return {
    ...meta,
    schema: k.schema.default(value),
    expects: k.expects,
    defaultText: meta.defaultText ?? String(value),
    secret: meta.secret ?? false,
  };
}

export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Every key, in the order the docs list them. */
export const configKeys = {
  MODEL_PATH: optional(path('an SD 1.5 checkpoint (a diffusers folder or a single .safetensors file)'), {
    description: 'SD 1.5 checkpoint: a diffusers folder or a single .safetensors file (LDM key layout)',
  }),
  TOKENIZER_DIR: optional(path('a folder holding vocab.json and merges.txt'), {
    description: 'CLIP tokenizer folder (vocab.json, merges.txt)',
    defaultText: "the checkpoint's tokenizer/ (inside a diffusers folder, beside a single file)",
  }),
  LORA_DIR: optional(path('a folder of LoRA .safetensors files'), {
    description: 'folder of LoRA .safetensors files the bot offers',
    defaultText: 'loras (under the working directory)',
  }),
  CACHE_DIR: optional(path('a writable folder'), {
    description: 'cache for compiled ONNX graphs and external weight data, keyed by content hash',
    defaultText: '.cache (under the working directory)',
  }),
  REDIS_URL: optional(url(['redis:', 'rediss:'], 'a Redis URL'), {
    description: 'Redis for the BullMQ queue and GPU workers; unset runs the engine inside the bot process',
  }),
  PLAYGROUND_PORT: withDefault(int(0, 65535), 3000, {
    description: 'port of the local playground (0 picks a free one)',
  }),
  PLAYGROUND_HOST: withDefault(text('a host name or address'), '127.0.0.1', {
    description: 'address the playground listens on; keep it local unless you mean to share it',
  }),
  ENGINE_DEVICE: withDefault(oneOf(['cpu', 'cuda']), 'cpu', {
    description: 'ONNX Runtime execution provider',
  }),
  ENGINE_THREADS: withDefault(int(0, 1024), 0, {
    description: 'intra-op threads for the CPU provider; 0 lets ONNX Runtime decide',
  }),
  ENGINE_DTYPE: withDefault(oneOf(['float32', 'float16']), 'float32', {
    description: 'compute precision; float16 needs ENGINE_DEVICE=cuda',
  }),
  ENGINE_OPTIMIZATION: withDefault(oneOf(['disabled', 'basic', 'extended', 'all']), 'all', {
    description: "ONNX Runtime's graph optimisation level for the engine's sessions",
  }),
  ENGINE_ATTENTION: withDefault(oneOf(['chunked', 'fused', 'materialised']), 'chunked', {
    description:
      "attention kernel: chunked (memory-efficient, SD 1.5 at 512² in a few GiB), fused (ONNX Runtime's MultiHeadAttention forward; try it on CUDA) or materialised (every probability held; only for comparisons)",
  }),
  ENGINE_PREPACK_WEIGHTS: withDefault(oneOf(['off', 'on']), 'off', {
    description:
      "let ONNX Runtime repack weights for its CPU matrix kernels: about 9% faster, but each session keeps its own copy (about 3.4 GB more for SD 1.5's UNet in CLoRA's two graphs)",
  }),
  ENGINE_MEMORY_BUDGET_MB: optional(int(256, 16 * 1024 * 1024), {
    description:
      "memory a composition's UNet batches may take; over it the branches run in chunks, one after another, and a job that cannot fit one branch is refused",
    defaultText:
      "the host's memory less 2 GiB (or 10%); with ENGINE_DEVICE=cuda the GPU's less 10%, as nvidia-smi reports it",
  }),
  CLIP_SKIP: withDefault(int(0, 11), 0, {
    description:
      "text-encoder layers to skip from the end (0: SD 1.5's default; 1 is popular with anime models)",
  }),
  GUIDANCE_ITERATIONS: withDefault(int(1, 100), 20, {
    description: "CLoRA's latent updates at each of its iterative steps (published: 20); fewer is faster",
  }),
  GUIDANCE_LOSS_THRESHOLD: optional(decimal(0, 10), {
    description: 'end an iterative burst of latent updates once the contrastive loss is below this',
    defaultText: 'off (always the full count, as published)',
  }),
  MAX_LORAS: withDefault(int(1, 64), DEFAULT_COMPOSE_LIMITS.maxLoras, {
    description: 'most LoRAs one /compose may use',
  }),
  MAX_STEPS: withDefault(int(1, 1000), DEFAULT_COMPOSE_LIMITS.maxSteps, {
    description: 'most denoising steps one job may ask for',
  }),
  MAX_SIZE: withDefault(side(DEFAULT_COMPOSE_LIMITS.sideMultiple, 4096), DEFAULT_COMPOSE_LIMITS.maxSide, {
    description: `largest image width or height in pixels (a multiple of ${DEFAULT_COMPOSE_LIMITS.sideMultiple})`,
  }),
  USER_CONCURRENCY: withDefault(int(1, 100), 1, {
    description: 'jobs one user may have queued or running at once',
  }),
  QUEUE_CAP_PER_SCOPE: withDefault(int(1, 100_000), 20, {
    description: 'jobs one Discord server or Slack workspace may have queued or running at once',
  }),
  RESULT_TTL_SECONDS: withDefault(int(10, 30 * 24 * 3600), 24 * 3600, {
    description: 'how long finished jobs (request, images, masks) are kept for reruns and buttons',
  }),
  LORA_UPLOAD_MAX_MB: withDefault(int(1, 4096), 256, {
    description: 'largest LoRA file an admin may upload',
  }),
  LOG_LEVEL: withDefault(oneOf(logLevels), 'info', { description: 'least severe log level written' }),
  LOG_FORMAT: withDefault(oneOf(['text', 'json']), 'text', {
    description:
      'log lines as text, or one JSON object per line (time, level, scope, msg) for a log collector',
  }),
  METRICS_PORT: optional(int(0, 65535), {
    description: 'port serving /healthz and /metrics (Prometheus) in every mode, workers too; unset: off',
  }),
  METRICS_HOST: withDefault(text('a host name or address'), '127.0.0.1', {
    description: 'address /healthz and /metrics listen on; 0.0.0.0 lets a Prometheus on another host scrape',
  }),
  SHUTDOWN_GRACE_SECONDS: withDefault(int(0, 3600), 30, {
    description: 'on SIGTERM, how long a running job may finish before it is handed back to the queue',
  }),
  DISCORD_TOKEN: optional(text('a Discord bot token'), {
    description: 'Discord bot token; set it to run the Discord adapter',
    secret: true,
  }),
  DISCORD_APPLICATION_ID: optional(snowflake(), {
    description: 'Discord application id, for registering slash commands (needed with DISCORD_TOKEN)',
  }),
  DISCORD_GUILD_ID: optional(snowflake(), {
    description: 'register commands to this one server only (instant updates while testing)',
  }),
  DISCORD_ADMIN_ROLE: optional(text('a role name or id'), {
    description: 'role allowed to upload and remove LoRAs (server administrators always may)',
  }),
  DISCORD_API_URL: optional(url(['https:', 'http:'], 'a URL'), {
    description: 'Discord REST API base, for a test double',
    defaultText: "discord.js's default",
  }),
  DISCORD_GATEWAY_URL: optional(url(['wss:', 'ws:'], 'a WebSocket URL'), {
    description: 'Discord gateway, for a test double',
    defaultText: 'as the REST API announces',
  }),
  SLACK_BOT_TOKEN: optional(prefixedToken('xoxb-', 'a Slack bot token'), {
    description: 'Slack bot token; set it to run the Slack adapter',
    secret: true,
  }),
  SLACK_SIGNING_SECRET: optional(text('the Slack signing secret'), {
    description: 'Slack signing secret, for HTTP events (needed unless SLACK_APP_TOKEN is set)',
    secret: true,
  }),
  SLACK_APP_TOKEN: optional(prefixedToken('xapp-', 'a Slack app-level token'), {
    description: 'Slack app-level token; set it to use Socket Mode instead of HTTP events',
    secret: true,
  }),
  SLACK_PORT: withDefault(int(0, 65535), 3000, {
    description: 'HTTP mode: port Slack posts /slack/events to (0 picks a free one)',
  }),
  SLACK_API_URL: optional(url(['https:', 'http:'], 'a URL'), {
    description: 'Slack Web API base, for a test double',
    defaultText: 'https://slack.com/api/',
  }),
  CIVITAI_TOKEN: optional(text('a Civitai API key'), {
    description: 'Civitai API key, for /lora add of models whose creators require a login',
    secret: true,
  }),
  CIVITAI_API_URL: optional(url(['https:', 'http:'], 'a URL'), {
    description: 'Civitai REST API base, for a test double',
    defaultText: 'https://civitai.com/api/v1/',
  }),
};

export type ConfigKeyName = keyof typeof configKeys;

/** The parsed keys: defaults applied, optional ones possibly undefined. */
export type ConfigValues = { [K in ConfigKeyName]: z.output<(typeof configKeys)[K]['schema']> };

/** The file that may hold any of the keys; only ever read from the environment. */
export const configFileKey = 'CLORA_CONFIG';
