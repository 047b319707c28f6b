// The `--option` flags of /compose. Each option declares how its value is read and
// checked and how it is written back, side by side, so parse and format cannot drift.

import { closestNames, quotedAlternatives } from './closest.ts';
import {
  COMPOSITION_METHODS,
  type ComposeRequest,
  type ComposeSettings,
  SAMPLERS,
  type Sampler,
} from './request.ts';

/** The part of a request that options set. */
export type ComposeOptionValues = Pick<
  ComposeRequest,
  'negativePrompt' | 'seed' | 'steps' | 'width' | 'height' | 'cfg' | 'sampler' | 'method' | 'masks'
>;

export type OptionRead =
  | { ok: true; set: Partial<ComposeOptionValues> }
  | { ok: false; message: string; suggestion?: string };

export interface ComposeOption {
  name: string;
  aliases: readonly string[];
  /** flag: no value; word: one word or quoted text; text: quoted text, or the words up to the next option. */
  takes: 'flag' | 'word' | 'text';
  /** How help shows it, e.g. `--steps N`. */
  usage: string;
  summary: (settings: ComposeSettings) => string;
  /** `written` is the name the user wrote, which may be an alias. */
  read: (value: string, settings: ComposeSettings, written: string) => OptionRead;
  /** The option as canonical text, or null when the request holds the default. */
  format: (request: ComposeRequest, settings: ComposeSettings) => string | null;
}

const INTEGER = /^\d+$/;
const DECIMAL = /^(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$/;

function clamp(x: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, x));
}

/** Quotes text for the command line, escaping what the lexer treats as quotes. */
export function quoteText(text: string): string {
  return `"${text.replace(/[\\"“”]/g, (c) => `\\${c}`)}"`;
}

function readInteger(
  value: string,
  option: string,
  lo: number,
  hi: number,
): { ok: true; n: number } | { ok: false; message: string; suggestion?: string } {
  const range = `a whole number from ${lo} to ${hi}`;
  if (!INTEGER.test(value)) {
    const rounded = DECIMAL.test(value) ? String(clamp(Math.round(Number(value)), lo, hi)) : undefined;
    return { ok: false, message: `--${option} must be ${range}, not '${value}'`, suggestion: rounded };
  }
  const n = Number(value);
  if (n < lo || n > hi) {
    return {
      ok: false,
      message: `--${option} ${value} is out of range: use ${range}`,
      suggestion: String(clamp(n, lo, hi)),
    };
  }
  return { ok: true, n };
}

function readEnum<T extends string>(
  value: string,
  option: string,
  allowed: readonly T[],
  normalise: (v: string) => string,
): { ok: true; value: T } | { ok: false; message: string; suggestion?: string } {
  const key = normalise(value);
  const found = allowed.find((a) => a === key);
  if (found !== undefined) return { ok: true, value: found };
  const near = closestNames(key, allowed);
  return {
    ok: false,
    message:
      near.length > 0
        ? `unknown ${option} '${value}' — did you mean ${quotedAlternatives(near)}?`
        : `unknown ${option} '${value}': use one of ${allowed.join(', ')}`,
    suggestion: near[0],
  };
}

function normaliseSampler(value: string): string {
  return value
    .toLowerCase()
    .replace(/\+\+/g, 'pp')
    .replace(/[\s-]+/g, '_');
}

/** The default size as help shows it: a number when the model is known here, else what it means. */
function defaultSizeText(s: ComposeSettings): string {
  const { width, height } = s.defaults;
  return width !== null && height !== null
    ? `${width}x${height}`
    : "the model's own size, 512x512 for SD 1.5";
}

/** A size to show in an example: the default when known, SD 1.5's own otherwise. */
function exampleSize(s: ComposeSettings): string {
  return `${s.defaults.width ?? 512}x${s.defaults.height ?? 512}`;
}

/** The nearest size each side of which is a multiple within the limits. */
function nearestSide(side: number, settings: ComposeSettings): number {
  const { minSide, maxSide, sideMultiple } = settings.limits;
  return clamp(Math.round(side / sideMultiple) * sideMultiple, minSide, maxSide);
}

export const COMPOSE_OPTIONS: readonly ComposeOption[] = [
  {
    name: 'seed',
    aliases: [],
    takes: 'word',
    usage: '--seed N',
    summary: (s) => `the same seed gives the same picture (0 to ${s.limits.maxSeed}, or random)`,
    read: (value, s) => {
      if (value.toLowerCase() === 'random') return { ok: true, set: { seed: null } };
      const n = readInteger(value, 'seed', 0, s.limits.maxSeed);
      return n.ok ? { ok: true, set: { seed: n.n } } : n;
    },
    format: (r) => (r.seed === null ? null : `--seed ${r.seed}`),
  },
  {
    name: 'steps',
    aliases: [],
    takes: 'word',
    usage: '--steps N',
    summary: (s) =>
      `denoising steps, ${s.limits.minSteps}–${s.limits.maxSteps} (default ${s.defaults.steps})`,
    read: (value, s) => {
      const n = readInteger(value, 'steps', s.limits.minSteps, s.limits.maxSteps);
      return n.ok ? { ok: true, set: { steps: n.n } } : n;
    },
    format: (r, s) => (r.steps === s.defaults.steps ? null : `--steps ${r.steps}`),
  },
  {
    name: 'size',
    aliases: [],
    takes: 'word',
    usage: '--size WxH',
    summary: (s) =>
      `width x height, each a multiple of ${s.limits.sideMultiple} from ${s.limits.minSide} to ${s.limits.maxSide} (default ${defaultSizeText(s)})`,
    read: (value, s) => {
      const { minSide, maxSide, sideMultiple } = s.limits;
      const rule = `each side must be a multiple of ${sideMultiple} between ${minSide} and ${maxSide}`;
      const m = /^(\d+)(?:\s*[x×X*]\s*(\d+))?$/.exec(value);
      if (m === null) {
        return {
          ok: false,
          message: `--size must be width x height, e.g. ${exampleSize(s)}, not '${value}'`,
        };
      }
      const width = Number(m[1]);
      const height = Number(m[2] ?? m[1]);
      const fits = (side: number) => side % sideMultiple === 0 && side >= minSide && side <= maxSide;
      if (!fits(width) || !fits(height)) {
        const near = `${nearestSide(width, s)}x${nearestSide(height, s)}`;
        return { ok: false, message: `--size ${value} won't work: ${rule}, e.g. ${near}`, suggestion: near };
      }
      return { ok: true, set: { width, height } };
    },
    format: (r, s) =>
      r.width === null ||
      r.height === null ||
      (r.width === s.defaults.width && r.height === s.defaults.height)
        ? null
        : `--size ${r.width}x${r.height}`,
  },
  {
    name: 'cfg',
    aliases: ['guidance'],
    takes: 'word',
    usage: '--cfg X',
    summary: (s) =>
      `how closely to follow the prompt, ${s.limits.minCfg}–${s.limits.maxCfg} (default ${s.defaults.cfg})`,
    read: (value, s) => {
      const { minCfg, maxCfg } = s.limits;
      const range = `a number from ${minCfg} to ${maxCfg}`;
      if (!DECIMAL.test(value)) return { ok: false, message: `--cfg must be ${range}, not '${value}'` };
      const cfg = Number(value);
      if (cfg < minCfg || cfg > maxCfg) {
        return {
          ok: false,
          message: `--cfg ${value} is out of range: use ${range}`,
          suggestion: String(clamp(cfg, minCfg, maxCfg)),
        };
      }
      return { ok: true, set: { cfg } };
    },
    format: (r, s) => (r.cfg === s.defaults.cfg ? null : `--cfg ${r.cfg}`),
  },
  {
    name: 'neg',
    aliases: ['negative'],
    takes: 'text',
    usage: '--neg "…"',
    summary: () => 'what the picture should not show',
    read: (value, s) =>
      value.length > s.limits.maxNegativeLength
        ? {
            ok: false,
            message: `--neg is ${value.length} characters long: keep it under ${s.limits.maxNegativeLength}`,
          }
        : { ok: true, set: { negativePrompt: value } },
    format: (r, s) =>
      r.negativePrompt === s.defaults.negativePrompt ? null : `--neg ${quoteText(r.negativePrompt)}`,
  },
  {
    name: 'sampler',
    aliases: ['scheduler'],
    takes: 'word',
    usage: '--sampler NAME',
    summary: (s) => `${SAMPLERS.join(', ')} (default ${s.defaults.sampler})`,
    read: (value) => {
      const r = readEnum<Sampler>(value, 'sampler', SAMPLERS, normaliseSampler);
      return r.ok ? { ok: true, set: { sampler: r.value } } : r;
    },
    format: (r, s) => (r.sampler === s.defaults.sampler ? null : `--sampler ${r.sampler}`),
  },
  {
    name: 'method',
    aliases: [],
    takes: 'word',
    usage: '--method NAME',
    summary: (s) =>
      `clora (LoRAs kept apart), merge (LoRAs summed), composite (their noise averaged), none (base model); default ${s.defaults.method}`,
    read: (value) => {
      const r = readEnum(value, 'method', COMPOSITION_METHODS, (v) => v.toLowerCase());
      return r.ok ? { ok: true, set: { method: r.value } } : r;
    },
    format: (r, s) => (r.method === s.defaults.method ? null : `--method ${r.method}`),
  },
  {
    name: 'masks',
    aliases: ['no-masks'],
    takes: 'flag',
    usage: '--masks',
    summary: (s) =>
      `also send which LoRA drew which pixels${s.defaults.masks ? ' (on by default; --no-masks turns it off)' : ''}`,
    read: (_value, _s, written) => ({ ok: true, set: { masks: written.toLowerCase() !== 'no-masks' } }),
    format: (r, s) => (r.masks === s.defaults.masks ? null : r.masks ? '--masks' : '--no-masks'),
  },
];

export function findOption(name: string): ComposeOption | undefined {
  const key = name.toLowerCase();
  return COMPOSE_OPTIONS.find((o) => o.name === key || o.aliases.includes(key));
}

/** Option names near a mistyped one, best first. */
export function closestOptions(name: string): string[] {
  const names = COMPOSE_OPTIONS.flatMap((o) => [o.name, ...o.aliases]);
  return closestNames(name.toLowerCase(), names);
}
