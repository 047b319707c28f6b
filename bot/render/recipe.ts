// What made an image, carried inside the image: AUTOMATIC1111's `parameters` text (which A1111's "PNG Info",
// Civitai and most image sites read) and our own `clora-bot` entry with the exact /compose command and CLoRA
// settings, so the file alone reproduces the picture.
import { readFileSync } from 'node:fs';
import type { RecipeReading as PictureReading } from '../../commands/ports.ts';
import type { CompositionSpec } from '../../engine/clora/spec.ts';
import { isSamplerName, type SamplerName } from '../../engine/schedulers/index.ts';
import { isPng, type PngTextEntry, readPngText } from './png-text.ts';

/** The keyword of A1111's text entry. */
export const PARAMETERS_KEYWORD = 'parameters';
/** The keyword of our own entry (JSON). */
export const RECIPE_KEYWORD = 'clora-bot';
/** Bumped when the JSON's meaning changes; readers refuse versions they do not know. */
export const RECIPE_FORMAT = 1;

/** The project's package.json: two folders up from source, three from the build in dist/. */
function projectPackage(): { version: string } {
  for (const up of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(up, import.meta.url), 'utf8')) as {
        name?: string;
        version: string;
      };
      if (pkg.name === 'clora-bot') return pkg;
    } catch {
      // not this folder
    }
  }
  throw new Error('clora-bot: package.json not found above bot/render');
}

const PACKAGE = projectPackage();
/** "clora-bot 0.1.0", A1111's Version field. */
export const GENERATOR = `clora-bot ${PACKAGE.version}`;

export interface RecipeLora {
  readonly name: string;
  /** The prompt's subject this LoRA is bound to; null for the style LoRA. */
  readonly subject: string | null;
  readonly weight: number;
  /** AutoV2: the first 10 hex digits of the file's SHA-256, as Civitai matches it. */
  readonly hash?: string;
}

export interface Recipe {
  readonly format: typeof RECIPE_FORMAT;
  /** The /compose command, every setting spelled out: parse it to get the same request back. */
  readonly command: string;
  readonly prompt: string;
  readonly negativePrompt: string;
  readonly steps: number;
  readonly sampler: string;
  readonly cfg: number;
  readonly seed: number;
  readonly width: number;
  readonly height: number;
  readonly model: { readonly name: string; readonly hash?: string };
  readonly loras: readonly RecipeLora[];
  readonly method: string;
  /** CLoRA's guidance settings as the engine ran them. */
  readonly guidance: Readonly<Record<string, unknown>>;
  readonly textEncoderLora: boolean;
  readonly generator: string;
}

/** AutoV2 from a full SHA-256 hex digest. */
export function autoV2(sha256: string): string {
  return sha256.slice(0, 10).toLowerCase();
}

/** What the engine ran, plus what only the caller knows: the command and the files' hashes. */
export function recipeFromSpec(
  spec: CompositionSpec,
  known: {
    command: string;
    model: { name: string; sha256?: string };
    /** LoRA file path → SHA-256 */
    loraSha256: ReadonlyMap<string, string>;
  },
): Recipe {
  const hash = (path: string) => {
    const sha = known.loraSha256.get(path);
    return sha ? { hash: autoV2(sha) } : {};
  };
  const loras: RecipeLora[] = spec.subjects.map((s) => ({
    name: s.lora.name,
    subject: s.word,
    weight: s.weight,
    ...hash(s.lora.path),
  }));
  if (spec.style)
    loras.push({
      name: spec.style.lora.name,
      subject: null,
      weight: spec.style.weight,
      ...hash(spec.style.lora.path),
    });
  return {
    format: RECIPE_FORMAT,
    command: known.command,
    prompt: spec.prompt,
    negativePrompt: spec.negative,
    steps: spec.steps,
    sampler: spec.sampler,
    cfg: spec.cfg,
    seed: spec.seed,
    width: spec.width,
    height: spec.height,
    model: { name: known.model.name, ...(known.model.sha256 ? { hash: autoV2(known.model.sha256) } : {}) },
    loras,
    method: spec.method,
    guidance: { ...spec.guidance },
    textEncoderLora: spec.textEncoderLora,
    generator: GENERATOR,
  };
}

/** Our sampler names as A1111 spells them (PNDM without its Runge–Kutta warm-up is A1111's PLMS). */
const A1111_SAMPLERS: Readonly<Record<SamplerName, string>> = {
  ddim: 'DDIM',
  euler: 'Euler',
  euler_a: 'Euler a',
  dpmpp_2m: 'DPM++ 2M',
  dpmpp_2m_karras: 'DPM++ 2M Karras',
  pndm: 'PLMS',
};

/** A1111 quotes a value that holds its separators, JSON-style. */
function a1111Value(value: string): string {
  return /[,:\n"]/.test(value) ? JSON.stringify(value) : value;
}

/**
 * The A1111 `parameters` text: the prompt (with `<lora:name:weight>` tags, as A1111 writes LoRAs), a
 * `Negative prompt:` line when there is one, then `Steps: …, Sampler: …, CFG scale: …, Seed: …, Size: WxH,
 * Model hash: …, Model: …, Lora hashes: "name: hash, …", Version: clora-bot …`.
 */
export function a1111Parameters(recipe: Recipe): string {
  const tags = recipe.loras.map((l) => `<lora:${l.name}:${l.weight}>`);
  const lines = [[recipe.prompt, ...tags].join(' ')];
  if (recipe.negativePrompt) lines.push(`Negative prompt: ${recipe.negativePrompt}`);
  const fields: Array<[string, string]> = [
    ['Steps', String(recipe.steps)],
    ['Sampler', isSamplerName(recipe.sampler) ? A1111_SAMPLERS[recipe.sampler] : recipe.sampler],
    ['CFG scale', String(recipe.cfg)],
    ['Seed', String(recipe.seed)],
    ['Size', `${recipe.width}x${recipe.height}`],
  ];
  if (recipe.model.hash) fields.push(['Model hash', recipe.model.hash]);
  fields.push(['Model', a1111Value(recipe.model.name)]);
  const hashed = recipe.loras.filter((l) => l.hash);
  if (hashed.length)
    fields.push(['Lora hashes', JSON.stringify(hashed.map((l) => `${l.name}: ${l.hash}`).join(', '))]);
  fields.push(['Version', recipe.generator]);
  lines.push(fields.map(([k, v]) => `${k}: ${v}`).join(', '));
  return lines.join('\n');
}

/** The text entries every picture of a composition carries: A1111's, then ours. */
export function recipeText(recipe: Recipe): PngTextEntry[] {
  return [
    { keyword: PARAMETERS_KEYWORD, text: a1111Parameters(recipe) },
    { keyword: RECIPE_KEYWORD, text: JSON.stringify(recipe) },
  ];
}

/** What an uploaded picture says about how it was made (the reading remix takes). */
export type RecipeReading = PictureReading<Recipe>;

/** Only the fields remix relies on are checked; nothing read here is ever run, only parsed as /compose text. */
function asRecipe(json: string): Recipe | undefined {
  try {
    const value = JSON.parse(json) as Partial<Recipe> | null;
    if (!value || typeof value !== 'object' || value.format !== RECIPE_FORMAT) return undefined;
    if (typeof value.command !== 'string' || !Array.isArray(value.loras)) return undefined;
    if (!value.loras.every((l) => l && typeof l.name === 'string')) return undefined;
    return value as Recipe;
  } catch {
    return undefined;
  }
}

/** Reads the recipe a picture carries (PNG text chunks). */
export function readRecipe(bytes: Uint8Array): RecipeReading {
  if (!isPng(bytes)) return { kind: 'not-png' };
  const entries = readPngText(bytes);
  const ours = entries.find((e) => e.keyword === RECIPE_KEYWORD);
  const recipe = ours && asRecipe(ours.text);
  if (recipe) return { kind: 'recipe', recipe };
  const parameters = entries.find((e) => e.keyword === PARAMETERS_KEYWORD)?.text;
  return parameters === undefined ? { kind: 'foreign' } : { kind: 'foreign', parameters };
}
