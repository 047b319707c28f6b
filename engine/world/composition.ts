// Composing in the world: its two LoRAs bound to the subjects they were trained on, the
// request the benchmark and the outcome tests make, and what the detector reads back —
// both subjects present, each in its own LoRA's look, or one in the other's (leakage).

import { join } from 'node:path';
import type { CompositionResult } from '../clora/engine.ts';
import { type CompositionSpec, compositionSpec, type GuidanceOptions, type Method } from '../clora/spec.ts';
import { type Detection, detectSubjects } from './detector.ts';
import { LORA_DIR } from './files.ts';
import { loraName } from './lora.ts';
import { WORLD_SAMPLING } from './model.ts';
import { LORA_LOOKS, type Subject, type Trigger } from './scene.ts';

export interface WorldLora {
  trigger: Trigger;
  subject: Subject;
  /** the look's name, as the detector reports it */
  look: string;
  path: string;
}

/** The world's LoRAs in `worldDir` (a train-world output): the cat's, then the penguin's. */
export function worldLoras(worldDir: string): WorldLora[] {
  return (['sks', 'ohwx'] as const).map((trigger) => ({
    trigger,
    subject: LORA_LOOKS[trigger].subject,
    look: LORA_LOOKS[trigger].look.name,
    path: join(worldDir, LORA_DIR, `${loraName(trigger)}.safetensors`),
  }));
}

export interface WorldRequest {
  seed: number;
  steps: number;
  method: Method;
  guidance?: Partial<GuidanceOptions>;
  /** default: "a cat and a penguin in a house" */
  prompt?: string;
}

/** Each LoRA bound to its subject with its trigger word, at the world's own 256×256. */
export function worldSpec(loras: readonly WorldLora[], r: WorldRequest): CompositionSpec {
  return compositionSpec({
    prompt: r.prompt ?? 'a cat and a penguin in a house',
    subjects: loras.map((l) => ({
      word: l.subject,
      lora: { name: loraName(l.trigger), path: l.path },
      weight: 1,
      triggers: [l.trigger],
    })),
    seed: r.seed,
    steps: r.steps,
    cfg: WORLD_SAMPLING.cfg,
    sampler: WORLD_SAMPLING.sampler,
    width: 256,
    height: 256,
    method: r.method,
    guidance: r.guidance,
  });
}

export interface CompositionOutcome {
  /** per LoRA, the subject the detector found for it (by shape), if any */
  found: (Detection | undefined)[];
  /** every bound subject was found */
  present: boolean;
  /** every bound subject was found in its own LoRA's look */
  ownLooks: boolean;
  /** some subject wears the other LoRA's look */
  leaked: boolean;
  /** "cat: orange striped, penguin: missing" */
  summary: string;
}

/** What the detector reads in a composition of the world's two LoRAs. */
export function compositionOutcome(
  result: CompositionResult,
  loras: readonly WorldLora[],
): CompositionOutcome {
  const detections = detectSubjects(result.image, result.width, result.height);
  const found = loras.map((l) => detections.find((d) => d.subject === l.subject));
  const other = (i: number) => loras[loras.length - 1 - i];
  return {
    found,
    present: found.every(Boolean),
    ownLooks: found.every((d, i) => d?.look === loras[i].look),
    leaked: found.some((d, i) => d !== undefined && d.look === other(i).look),
    summary: loras.map((l, i) => `${l.subject}: ${found[i]?.look ?? 'missing'}`).join(', '),
  };
}
