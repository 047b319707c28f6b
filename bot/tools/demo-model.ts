// npm run demo-model: installs the world the project trained itself (npm run train-world;
// committed in assets/world) as a model and a LoRA library a newcomer starts the bot on:
// a diffusers folder in <out>/model and its two LoRAs in <out>/loras — 'sks-cat' draws the
// cat (a circle) orange and striped, 'ohwx-penguin' draws the penguin (a square) pink: a
// world where CLoRA and merging can be told apart by eye, a picture in seconds on a CPU.
// Nothing is trained or downloaded.
// Usage: npm run demo-model -- [--out demo] [--world assets/world]

import { cpSync, existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { isEntryPoint } from '../../engine/entry-point.ts';
import { readLora } from '../../engine/lora/file.ts';
import { openCheckpoint } from '../../engine/weights/checkpoint.ts';
import { LORA_DIR, MODEL_DIR, WORLD_DIR } from '../../engine/world/files.ts';
import { loraName } from '../../engine/world/lora.ts';
import { LORA_LOOKS, type Trigger } from '../../engine/world/scene.ts';

const TRIGGERS = Object.keys(LORA_LOOKS) as Trigger[];

/** The demo's LoRAs by name, each with the subject it draws and the look it gives it. */
export const DEMO_LORAS = TRIGGERS.map((trigger) => ({
  name: loraName(trigger),
  trigger,
  subject: LORA_LOOKS[trigger].subject,
  look: LORA_LOOKS[trigger].look.name,
}));

/**
 * The command the playground offers for the demo (its example binds the library's first LoRAs
 * by name, each to the subject its name ends with, masks shown): both LoRAs on the subjects they
 * were trained on.
 */
export const DEMO_COMMAND = `/compose ${[...DEMO_LORAS]
  .sort((a, b) => a.name.localeCompare(b.name))
  .map((l) => `${l.subject}:<${l.name}>`)
  .join(' ')} in a house --masks`;

export interface DemoFiles {
  /** the diffusers folder to give MODEL_PATH */
  modelPath: string;
  modelBytes: number;
  loraDir: string;
  loras: { name: string; path: string; triggers: string[]; layers: number }[];
}

function folderBytes(dir: string): number {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((f) => statSync(join(dir, f)))
    .reduce((sum, s) => sum + (s.isFile() ? s.size : 0), 0);
}

/** Copies the world's model and LoRAs to `<out>/model` and `<out>/loras`, and checks both load. */
export function installDemo(out: string, world = WORLD_DIR): DemoFiles {
  const from = { model: join(world, MODEL_DIR), loras: join(world, LORA_DIR) };
  if (!existsSync(join(from.model, 'model_index.json')))
    throw new Error(`${from.model} holds no trained world model; train one with \`npm run train-world\``);
  const missing = DEMO_LORAS.filter((l) => !existsSync(join(from.loras, `${l.name}.safetensors`)));
  if (missing.length > 0) {
    throw new Error(
      `${from.loras} lacks ${missing.map((l) => `${l.name}.safetensors`).join(' and ')}: ` +
        '`npm run train-world` trains the LoRAs after the model (it resumes where it stopped)',
    );
  }
  const modelPath = join(out, 'model');
  const loraDir = join(out, 'loras');
  // A fresh copy: files of an earlier demo (the random one wrote model.safetensors) must not linger.
  rmSync(modelPath, { recursive: true, force: true });
  cpSync(from.model, modelPath, { recursive: true, dereference: true });
  mkdirSync(loraDir, { recursive: true });
  const ck = openCheckpoint(modelPath);
  const base = { unet: ck.unet.weights, textEncoder: ck.textEncoder.weights };
  const loras = DEMO_LORAS.map((l) => {
    const path = join(loraDir, `${l.name}.safetensors`);
    cpSync(join(from.loras, `${l.name}.safetensors`), path);
    // The bot must take them as they are: read them back against this very model.
    const read = readLora(path, base);
    if (read.unmatched.length > 0)
      throw new Error(`${path}: ${read.unmatched.length} modules match no layer of the world model`);
    return { name: l.name, path, triggers: read.triggerCandidates, layers: read.modules.length };
  });
  return { modelPath, modelBytes: folderBytes(modelPath), loraDir, loras };
}

/** A path as the user should type it: relative to where they run npm, when it is inside. */
function shown(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path;
}

function main(): void {
  const { values } = parseArgs({
    options: {
      out: { type: 'string', default: 'demo' },
      world: { type: 'string', default: WORLD_DIR },
    },
  });
  const t0 = performance.now();
  const demo = installDemo(resolve(values.out as string), resolve(values.world as string));
  const seconds = ((performance.now() - t0) / 1000).toFixed(1);
  const model = shown(demo.modelPath);
  const loraDir = shown(demo.loraDir);
  console.log(
    [
      `Installed the world model in ${model} (${(demo.modelBytes / 2 ** 20).toFixed(1)} MB) and its LoRAs in ${loraDir} in ${seconds} s:`,
      ...DEMO_LORAS.map((l) => `  ${l.name}: the ${l.subject} in ${l.look} (trigger word '${l.trigger}')`),
      '',
      'It is a small world the project trained itself: cats are circles, penguins squares, dogs triangles,',
      'in a house, on the beach or in a forest, 256×256. Start the bot on it:',
      '',
      `  MODEL_PATH=${model} LORA_DIR=${loraDir} npm start`,
      '',
      'then open the playground address it prints (http://127.0.0.1:3000 by default) and type',
      '',
      `  ${DEMO_COMMAND}`,
      '',
      'The masks show which LoRA drew which part; press "Compare with merge" to see the LoRAs merged instead.',
      'For real pictures, set MODEL_PATH to an SD 1.5 checkpoint (a diffusers folder or a .safetensors file)',
      'and LORA_DIR to a folder of SD 1.5 LoRAs.',
    ].join('\n'),
  );
}

if (isEntryPoint(import.meta.url)) {
  try {
    main();
  } catch (e) {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  }
}
