// npm run compose -- --model <dir|file> --lora tabby=path/to/tabby.safetensors --lora plush=…
//                    "cat:<tabby> penguin:<plush> in a house" --seed 42 --out out/
// Composes from the command line with the same /compose language the chat front speaks and
// writes image.png, masks.png, maps.png and report.json; a progress bar goes to stderr.
// --compare also composes the same seed with merge and writes compare.png: merge beside CLoRA and its masks.

import { writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import {
  type ComposeSettings,
  composeSettingsOf,
  loraCatalog,
  parseCompose,
  pointAtError,
  resolveLoras,
  withSeed,
} from '../../commands/compose/index.ts';
import { recipeCommand } from '../../commands/remix.ts';
import { type Config, ConfigError, loadConfig } from '../../config/index.ts';
import { Engine } from '../../engine/clora/engine.ts';
import type { Progress } from '../../engine/clora/pipeline.ts';
import { defaultGuidance, type GuidanceOptions } from '../../engine/clora/spec.ts';
import { isEntryPoint } from '../../engine/entry-point.ts';
import { compositionRecipe } from '../engine-host/recipe.ts';
import { type ResolvedLora, specFromRequest } from '../engine-host/spec.ts';
import { compositionComparison } from '../render/compare.ts';
import { renderComposition } from '../render/composition.ts';
import { decodedImage } from '../render/image.ts';
import { encodePng, recipeText } from '../render/index.ts';
import { cudaProviderProblem, loraFileProblem, prepareOutFolder } from './checks.ts';

function usage(settings: ComposeSettings, device: string): string {
  const d = settings.defaults;
  const g = defaultGuidance(d.steps);
  return `usage: npm run compose -- --model <diffusers dir | .safetensors> --lora NAME=FILE [--lora …] "<compose text>"

compose options (the /compose language; limits from MAX_STEPS, MAX_SIZE, MAX_LORAS):
  --seed N                random unless given
  --steps N               default ${d.steps}, at most ${settings.limits.maxSteps}
  --size WxH              multiples of ${settings.limits.sideMultiple} from ${settings.limits.minSide} to ${settings.limits.maxSide}; default ${d.width === null || d.height === null ? "the model's own size (512x512 for SD 1.5), at most MAX_SIZE" : `${d.width}x${d.height}`}
  --cfg X                 default ${d.cfg}
  --neg "…"               negative prompt
  --sampler S             default ${d.sampler}
  --method M              default ${d.method}

this command:
  --out DIR               default out (created if missing)
  --compare               also compose with merge (with CLoRA for --method merge) and write
                          compare.png: merge | CLoRA | CLoRA's masks, same seed
  --tokenizer DIR         default: the checkpoint's tokenizer/
  --trigger NAME=WORDS    default: the LoRA's most frequent tag, else its name
  --threads N             default: onnxruntime decides
  --device cpu|cuda       default ${device} (ENGINE_DEVICE)
  --cache DIR             default .cache/models
  --no-update --no-mask --published --no-te-lora
  --iterations N          default ${g.iterations}
  --loss-threshold X      default: off
  --step-size X           default ${g.stepSize}
  --mask-threshold X      default ${g.maskThreshold}
  --morphology M          none|open|close|dilate|erode, default ${g.morphology}
  --apply-mask-after N    default ${g.applyMaskAfter}`;
}

interface CliOptions {
  model?: string;
  tokenizer?: string;
  out: string;
  loras: Map<string, string>;
  triggers: Map<string, string[]>;
  threads?: number;
  device: 'cpu' | 'cuda';
  cache?: string;
  guidance: Partial<GuidanceOptions>;
  textEncoderLora: boolean;
  compare: boolean;
  composeWords: string[];
  help: boolean;
  /** --device as given; the configuration's ENGINE_DEVICE otherwise */
  deviceGiven: boolean;
}

function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(2);
}

/** Splits our own flags from the words of the compose command (which keep its options). */
export function parseCli(argv: string[]): CliOptions {
  const o: CliOptions = {
    out: 'out',
    loras: new Map(),
    triggers: new Map(),
    device: 'cpu',
    guidance: {},
    textEncoderLora: true,
    compare: false,
    composeWords: [],
    help: false,
    deviceGiven: false,
  };
  const pair = (v: string | undefined, flag: string): [string, string] => {
    const at = v?.indexOf('=') ?? -1;
    if (!v || at <= 0) fail(`${flag} takes NAME=VALUE, got ${JSON.stringify(v)}`);
    return [v.slice(0, at), v.slice(at + 1)];
  };
  const num = (v: string | undefined, flag: string) => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n)) fail(`${flag} takes a number, got ${JSON.stringify(v)}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => argv[++i];
    switch (a) {
      case '--model':
        o.model = next();
        break;
      case '--tokenizer':
        o.tokenizer = next();
        break;
      case '--out':
        o.out = next();
        break;
      case '--lora': {
        const [name, file] = pair(next(), '--lora');
        o.loras.set(name, file);
        break;
      }
      case '--trigger': {
        const [name, words] = pair(next(), '--trigger');
        o.triggers.set(name, words.split(/[\s,]+/).filter(Boolean));
        break;
      }
      case '--threads':
        o.threads = num(next(), a);
        break;
      case '--device': {
        const d = next();
        if (d !== 'cpu' && d !== 'cuda') fail(`--device is cpu or cuda, got ${JSON.stringify(d)}`);
        o.device = d;
        o.deviceGiven = true;
        break;
      }
      case '--cache':
        o.cache = next();
        break;
      case '--no-update':
        o.guidance.update = false;
        break;
      case '--no-mask':
        o.guidance.mask = false;
        break;
      case '--published':
        o.guidance.published = true;
        break;
      case '--iterations':
        o.guidance.iterations = num(next(), a);
        break;
      case '--loss-threshold':
        o.guidance.lossThreshold = num(next(), a);
        break;
      case '--step-size':
        o.guidance.stepSize = num(next(), a);
        break;
      case '--mask-threshold':
        o.guidance.maskThreshold = num(next(), a);
        break;
      case '--apply-mask-after':
        o.guidance.applyMaskAfter = num(next(), a);
        break;
      case '--morphology': {
        const m = next();
        if (!['none', 'open', 'close', 'dilate', 'erode'].includes(m))
          fail(`--morphology is none|open|close|dilate|erode`);
        o.guidance.morphology = m as GuidanceOptions['morphology'];
        break;
      }
      case '--no-te-lora':
        o.textEncoderLora = false;
        break;
      case '--compare':
        o.compare = true;
        break;
      case '--help':
      case '-h':
        o.help = true;
        break;
      default: {
        // The compose language's own words and options; an option's value stays one argument.
        const afterOption = (argv[i - 1] ?? '').startsWith('--') && !(argv[i - 1] ?? '').includes('=');
        o.composeWords.push(afterOption && /\s/.test(a) ? `"${a.replace(/"/g, '')}"` : a);
      }
    }
  }
  return o;
}

function progressBar(p: Progress): string {
  const width = 28;
  const done = Math.round((p.step / Math.max(1, p.steps)) * width);
  const bar = `${'█'.repeat(done)}${'░'.repeat(width - done)}`;
  const eta = p.etaMs !== undefined ? ` ETA ${Math.ceil(p.etaMs / 1000)}s` : '';
  const update = p.phase === 'guidance' ? ` update ${p.iteration} loss ${p.loss?.toFixed(4)}` : '';
  return `\r${bar} step ${p.step}/${p.steps} ${p.phase}${update}${eta}`.padEnd(90);
}

async function main(): Promise<void> {
  const o = parseCli(process.argv.slice(2));
  let config: Config;
  try {
    config = loadConfig(process.env);
  } catch (e) {
    fail(e instanceof ConfigError ? e.message : String(e));
  }
  // The bot's limits and defaults (MAX_SIZE, MAX_STEPS, MAX_LORAS), by the bot's one rule.
  const settings = composeSettingsOf(config.limits);
  if (!o.deviceGiven) o.device = config.engine.device;
  const USAGE = usage(settings, o.device);
  if (o.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (!o.model)
    fail(`--model is missing: point it at an SD 1.5 diffusers folder or .safetensors file\n${USAGE}`);
  if (o.composeWords.length === 0)
    fail(`no compose text given, e.g. "cat:<tabby> penguin:<plush> in a house"\n${USAGE}`);
  const text = o.composeWords.join(' ');
  const parsed = parseCompose(text, settings);
  if (!parsed.ok) fail(`${parsed.error.message}\n${pointAtError(text, parsed.error)}`);
  const resolved = resolveLoras(parsed.request, loraCatalog([...o.loras.keys()]), parsed.source);
  if (!resolved.ok) {
    fail(
      `${resolved.error.message}${o.loras.size === 0 ? '\nregister LoRA files with --lora NAME=FILE' : ''}`,
    );
  }
  const request = withSeed(resolved.request);
  // Everything that can be checked before minutes of composing is checked first.
  for (const [name, file] of o.loras) {
    const problem = loraFileProblem(file);
    if (problem) fail(`--lora ${name}=${file}: ${problem}`);
  }
  const outProblem = prepareOutFolder(o.out);
  if (outProblem) fail(`--out ${o.out}: ${outProblem}`);
  if (o.device === 'cuda') {
    const problem = cudaProviderProblem();
    if (problem) fail(problem);
  }

  process.stderr.write(`loading ${o.model} …\n`);
  const engine = await Engine.load({
    modelPath: o.model,
    tokenizerDir: o.tokenizer,
    provider: o.device,
    threads: o.threads,
    cacheDir: o.cache ?? resolve('.cache', 'models'),
    // MAX_LORAS, MAX_STEPS and MAX_SIZE bound the engine too, as a worker's (engineOptions).
    limits: config.limits,
  });
  const lookup = (name: string): ResolvedLora => {
    const entry = [...o.loras.entries()].find(([n]) => n.toLowerCase() === name.toLowerCase());
    if (!entry) throw new Error(`unknown LoRA '${name}'`);
    const ref = { name: entry[0], path: resolve(entry[1]) };
    const file = engine.loadLora(ref);
    const triggers =
      o.triggers.get(entry[0]) ?? (file.triggerCandidates.length ? [file.triggerCandidates[0]] : [entry[0]]);
    return { ref, triggers };
  };
  // Without --size the model's own size, as diffusers does (256 for the tiny fixture, 512 for SD 1.5).
  const spec = specFromRequest(
    request,
    lookup,
    { guidance: undefined, textEncoderLora: o.textEncoderLora },
    engine.defaultSize,
  );
  Object.assign(spec.guidance, o.guidance);

  const result = await engine.compose(spec, { onProgress: (p) => process.stderr.write(progressBar(p)) });
  process.stderr.write('\n');
  const rgb = decodedImage(result.image, result.width, result.height);
  const recipe = await compositionRecipe(
    engine,
    result.spec,
    recipeCommand({ ...request, width: spec.width, height: spec.height }),
  );
  writeFileSync(join(o.out, 'image.png'), await encodePng(rgb, recipeText(recipe)));
  const pictures = await renderComposition(result, {
    masks: true,
    maps: true,
    maxBytes: 64 * 1024 * 1024,
    recipe,
  });
  if (pictures.masks) writeFileSync(join(o.out, 'masks.png'), pictures.masks.bytes);
  if (pictures.maps) writeFileSync(join(o.out, 'maps.png'), pictures.maps.bytes);
  const report = {
    command: text,
    spec: result.spec,
    prompts: result.prompts,
    loras: [...new Set(result.spec.subjects.map((s) => s.lora.path))].map((path) => {
      const f = engine.loadLora({ name: basename(path), path });
      return {
        path,
        name: f.name,
        format: f.format,
        rank: f.rank,
        sha256: f.sha256,
        unmatchedKeys: f.unmatched.length,
      };
    }),
    losses: result.losses,
    size: { width: result.width, height: result.height },
    // masks and maps are rows × cols of this grid, row-major
    attentionGrid: result.grid,
    maskPixels: result.masks.map((m) => m.reduce((a, b) => a + b, 0)),
    timingsMs: result.timings,
    load: engine.loadTimings,
  };
  writeFileSync(join(o.out, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
  let compared = '';
  if (o.compare) {
    const method = spec.method === 'merge' ? 'clora' : 'merge';
    process.stderr.write(`composing the same seed with ${method} to compare …\n`);
    const other = await engine.compose(
      { ...spec, method },
      { onProgress: (p) => process.stderr.write(progressBar(p)) },
    );
    process.stderr.write('\n');
    const [merge, clora] = method === 'merge' ? [other, result] : [result, other];
    const sheet = await compositionComparison(merge, clora, { maxBytes: 64 * 1024 * 1024 });
    writeFileSync(join(o.out, 'compare.png'), sheet.bytes);
    compared = ', compare.png';
  }
  process.stderr.write(
    `wrote ${join(o.out, 'image.png')}${pictures.masks ? ', masks.png' : ''}${pictures.maps ? ', maps.png' : ''}, report.json${compared} (seed ${spec.seed}, ${(result.timings.total / 1000).toFixed(1)} s)\n`,
  );
  await engine.close();
}

if (isEntryPoint(import.meta.url)) {
  main().catch((e: unknown) => fail((e as Error).message));
}
