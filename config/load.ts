// loadConfig: environment over an optional JSON file, parsed key by key against the key
// table, checked across keys, and grouped into the typed Config the rest of the bot reads.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { type ConfigKeyName, type ConfigValues, configFileKey, configKeys, type logLevels } from './keys.ts';
import { registerSecret } from './redact.ts';

export interface EngineConfig {
  /** Unset is allowed where this process does not run the engine (a bot with REDIS_URL). */
  modelPath?: string;
  tokenizerDir?: string;
  loraDir: string;
  cacheDir: string;
  device: 'cpu' | 'cuda';
  /** 0: ONNX Runtime decides. */
  threads: number;
  dtype: 'float32' | 'float16';
  optimization: 'disabled' | 'basic' | 'extended' | 'all';
  attention: 'chunked' | 'fused' | 'materialised';
  /** ONNX Runtime's weight prepacking (faster CPU kernels, a weight copy per session) */
  prepackWeights: boolean;
  /** Unset: derived from the host's (or the GPU's) memory by the engine. */
  memoryBudgetMb?: number;
  clipSkip: number;
  /** CLoRA's iterations at its iterative steps, and an optional early stop for them */
  guidanceIterations: number;
  guidanceLossThreshold?: number;
}

export interface QueueConfig {
  /** Unset: the in-process queue, with the engine in this process. */
  redisUrl?: string;
  perUserLimit: number;
  perScopeCap: number;
  resultTtlSeconds: number;
}

export interface LimitsConfig {
  maxLoras: number;
  maxSteps: number;
  maxSize: number;
  loraUploadMaxMb: number;
}

export interface DiscordConfig {
  token: string;
  applicationId: string;
  guildId?: string;
  adminRole?: string;
  apiUrl?: string;
  gatewayUrl?: string;
}

export interface SlackConfig {
  botToken: string;
  /** Socket Mode with an app-level token, else HTTP events verified by the signing secret. */
  mode: 'socket' | 'http';
  signingSecret?: string;
  appToken?: string;
  apiUrl?: string;
  /** HTTP mode: the port /slack/events listens on */
  port: number;
}

export interface OpsConfig {
  logFormat: 'text' | 'json';
  /** unset: no /healthz and /metrics server */
  metricsPort?: number;
  metricsHost: string;
  shutdownGraceSeconds: number;
}

export interface CivitaiConfig {
  apiUrl?: string;
  token?: string;
}

export interface PlaygroundConfig {
  host: string;
  port: number;
}

export interface Config {
  engine: EngineConfig;
  queue: QueueConfig;
  limits: LimitsConfig;
  /** Present when DISCORD_TOKEN is set. */
  discord?: DiscordConfig;
  /** Present when SLACK_BOT_TOKEN is set. */
  slack?: SlackConfig;
  playground: PlaygroundConfig;
  logLevel: (typeof logLevels)[number];
  ops: OpsConfig;
  civitai: CivitaiConfig;
  /** The config file read, if any. */
  file?: string;
}

export interface LoadOptions {
  /**
   * What this process is, for the keys it cannot start without: a `worker` needs REDIS_URL
   * and MODEL_PATH; a `bot` without REDIS_URL runs the engine itself and needs MODEL_PATH.
   * Leave it out to check values only.
   */
  role?: 'bot' | 'worker';
  /** Relative paths from the environment resolve against this; default process.cwd(). */
  cwd?: string;
}

type Source = 'environment' | 'config file' | 'unset';

export interface ConfigIssue {
  key: string;
  /** The value as it may be shown: secrets masked, long values cut. Absent when unset. */
  shown?: string;
  source: Source;
  expected: string;
}

export class ConfigError extends Error {
  constructor(readonly issues: ConfigIssue[]) {
    const lines = issues.map(
      (i) => `  ${i.key}${i.shown === undefined ? '' : `=${i.shown}`} (${i.source}): expected ${i.expected}`,
    );
    super(
      `invalid configuration (${issues.length} ${issues.length === 1 ? 'key' : 'keys'}):\n${lines.join('\n')}`,
    );
    this.name = 'ConfigError';
  }
}

interface RawValue {
  text: string;
  source: Exclude<Source, 'unset'>;
}

/** Reads the configuration; throws ConfigError naming every bad key. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, options: LoadOptions = {}): Config {
  const cwd = options.cwd ?? process.cwd();
  const issues: ConfigIssue[] = [];
  const fileSetting = env[configFileKey];
  const filePath = present(fileSetting) ? resolve(cwd, fileSetting) : undefined;
  const fromFile = filePath === undefined ? {} : readConfigFile(filePath, issues);

  const raw = new Map<ConfigKeyName, RawValue>();
  for (const name of Object.keys(configKeys) as ConfigKeyName[]) {
    const envText = env[name];
    if (present(envText)) raw.set(name, { text: envText, source: 'environment' });
    else if (fromFile[name] !== undefined) raw.set(name, { text: fromFile[name], source: 'config file' });
  }

  const values: Partial<Record<ConfigKeyName, unknown>> = {};
  for (const name of Object.keys(configKeys) as ConfigKeyName[]) {
    const key = configKeys[name];
    const given = raw.get(name);
    const parsed = key.schema.safeParse(given?.text);
    if (parsed.success) values[name] = parsed.data;
    else issues.push(issue(name, given, key.expects));
  }
  const v = values as ConfigValues;
  const ok = (name: ConfigKeyName) => !issues.some((i) => i.key === name);
  const need = (name: ConfigKeyName, why: string) => {
    if (ok(name) && v[name] === undefined)
      issues.push(issue(name, undefined, `${configKeys[name].expects} (${why})`));
  };

  if (
    ok('ENGINE_DTYPE') &&
    ok('ENGINE_DEVICE') &&
    v.ENGINE_DTYPE === 'float16' &&
    v.ENGINE_DEVICE !== 'cuda'
  ) {
    issues.push(issue('ENGINE_DTYPE', raw.get('ENGINE_DTYPE'), 'float32 unless ENGINE_DEVICE=cuda'));
  }
  // Half a platform's settings would silently open the playground instead: name the missing half.
  if (v.DISCORD_TOKEN !== undefined) need('DISCORD_APPLICATION_ID', 'needed with DISCORD_TOKEN');
  for (const partner of ['DISCORD_APPLICATION_ID', 'DISCORD_GUILD_ID', 'DISCORD_ADMIN_ROLE'] as const) {
    if (v[partner] !== undefined) need('DISCORD_TOKEN', `${partner} is set`);
  }
  if (v.SLACK_BOT_TOKEN !== undefined && ok('SLACK_APP_TOKEN') && v.SLACK_APP_TOKEN === undefined) {
    need('SLACK_SIGNING_SECRET', 'needed with SLACK_BOT_TOKEN unless SLACK_APP_TOKEN is set');
  }
  for (const partner of ['SLACK_SIGNING_SECRET', 'SLACK_APP_TOKEN'] as const) {
    if (v[partner] !== undefined) need('SLACK_BOT_TOKEN', `${partner} is set`);
  }
  if (options.role === 'worker') {
    need('REDIS_URL', 'a worker takes its jobs from Redis');
    need('MODEL_PATH', 'a worker runs the engine');
  } else if (options.role === 'bot' && ok('REDIS_URL') && v.REDIS_URL === undefined) {
    need('MODEL_PATH', 'without REDIS_URL the bot runs the engine itself');
  }
  if (issues.length > 0) throw new ConfigError(issues);

  for (const name of Object.keys(configKeys) as ConfigKeyName[]) {
    const value = v[name];
    if (configKeys[name].secret && typeof value === 'string') registerSecret(value);
  }
  const pathOf = (name: ConfigKeyName, fallback?: string): string | undefined => {
    const given = raw.get(name);
    if (given === undefined) return fallback === undefined ? undefined : resolve(cwd, fallback);
    // A path written in the config file is relative to that file.
    return resolve(given.source === 'config file' && filePath ? dirname(filePath) : cwd, given.text);
  };
  const modelPath = pathOf('MODEL_PATH');
  return {
    engine: {
      modelPath,
      // Unset: the checkpoint's own tokenizer/ (in a diffusers folder, or beside a single file).
      tokenizerDir: pathOf('TOKENIZER_DIR'),
      loraDir: pathOf('LORA_DIR', 'loras')!,
      cacheDir: pathOf('CACHE_DIR', '.cache')!,
      device: v.ENGINE_DEVICE,
      threads: v.ENGINE_THREADS,
      dtype: v.ENGINE_DTYPE,
      optimization: v.ENGINE_OPTIMIZATION,
      attention: v.ENGINE_ATTENTION,
      prepackWeights: v.ENGINE_PREPACK_WEIGHTS === 'on',
      memoryBudgetMb: v.ENGINE_MEMORY_BUDGET_MB,
      clipSkip: v.CLIP_SKIP,
      guidanceIterations: v.GUIDANCE_ITERATIONS,
      guidanceLossThreshold: v.GUIDANCE_LOSS_THRESHOLD,
    },
    queue: {
      redisUrl: v.REDIS_URL,
      perUserLimit: v.USER_CONCURRENCY,
      perScopeCap: v.QUEUE_CAP_PER_SCOPE,
      resultTtlSeconds: v.RESULT_TTL_SECONDS,
    },
    limits: {
      maxLoras: v.MAX_LORAS,
      maxSteps: v.MAX_STEPS,
      maxSize: v.MAX_SIZE,
      loraUploadMaxMb: v.LORA_UPLOAD_MAX_MB,
    },
    discord:
      v.DISCORD_TOKEN === undefined
        ? undefined
        : {
            token: v.DISCORD_TOKEN,
            applicationId: v.DISCORD_APPLICATION_ID!,
            guildId: v.DISCORD_GUILD_ID,
            adminRole: v.DISCORD_ADMIN_ROLE,
            apiUrl: v.DISCORD_API_URL,
            gatewayUrl: v.DISCORD_GATEWAY_URL,
          },
    slack:
      v.SLACK_BOT_TOKEN === undefined
        ? undefined
        : {
            botToken: v.SLACK_BOT_TOKEN,
            mode: v.SLACK_APP_TOKEN === undefined ? 'http' : 'socket',
            signingSecret: v.SLACK_SIGNING_SECRET,
            appToken: v.SLACK_APP_TOKEN,
            apiUrl: v.SLACK_API_URL,
            port: v.SLACK_PORT,
          },
    playground: { host: v.PLAYGROUND_HOST, port: v.PLAYGROUND_PORT },
    logLevel: v.LOG_LEVEL,
    ops: {
      logFormat: v.LOG_FORMAT,
      metricsPort: v.METRICS_PORT,
      metricsHost: v.METRICS_HOST,
      shutdownGraceSeconds: v.SHUTDOWN_GRACE_SECONDS,
    },
    civitai: { apiUrl: v.CIVITAI_API_URL, token: v.CIVITAI_TOKEN },
    file: filePath,
  };
}

/** An empty variable counts as unset, as shells and .env files often leave them. */
function present(value: string | undefined): value is string {
  return value !== undefined && value !== '';
}

function issue(name: ConfigKeyName, given: RawValue | undefined, expected: string): ConfigIssue {
  if (given === undefined) return { key: name, source: 'unset', expected };
  return { key: name, shown: show(given.text, configKeys[name].secret), source: given.source, expected };
}

const SHOWN_MAX = 60;

function show(text: string, secret: boolean): string {
  if (secret) return `<secret, ${text.length} chars>`;
  const masked = text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@]+@/gi, '$1***@');
  return JSON.stringify(masked.length > SHOWN_MAX ? `${masked.slice(0, SHOWN_MAX)}…` : masked);
}

/** The file's keys as text; problems with the file itself become issues. */
function readConfigFile(path: string, issues: ConfigIssue[]): Partial<Record<ConfigKeyName, string>> {
  const fileIssue = (expected: string) =>
    issues.push({ key: configFileKey, shown: JSON.stringify(path), source: 'environment', expected });
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    fileIssue(err.code ? `a readable JSON file (${err.code})` : `a JSON file (${err.message})`);
    return {};
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    fileIssue('a JSON object of configuration keys');
    return {};
  }
  const out: Partial<Record<ConfigKeyName, string>> = {};
  for (const [name, value] of Object.entries(parsed)) {
    if (!(name in configKeys)) {
      const near = closestKey(name);
      issues.push({
        key: name,
        source: 'config file',
        expected: `a known key${near ? ` (did you mean ${near}?)` : ''}`,
      });
      continue;
    }
    const keyName = name as ConfigKeyName;
    if (value === null) continue;
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
      out[keyName] = String(value);
    } else {
      issues.push({
        key: name,
        shown: '<object>',
        source: 'config file',
        expected: configKeys[keyName].expects,
      });
    }
  }
  return out;
}

function closestKey(name: string): string | undefined {
  let best: string | undefined;
  let bestDistance = 4;
  for (const known of Object.keys(configKeys)) {
    const d = editDistance(name.toUpperCase(), known);
    if (d < bestDistance) [best, bestDistance] = [known, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length];
}
