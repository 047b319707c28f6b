// The full check of a LoRA against the configured SD 1.5 model: every factor matched to a
// layer of the model and its shapes checked (the engine's readLora, which reads the whole file).

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { LoraCheck } from '../../commands/ports.ts';
import { LoraError, readLora } from '../../engine/lora/file.ts';
import type { BaseWeights } from '../../engine/lora/targets.ts';
import { WeightsError } from '../../engine/weights/safetensors.ts';

export type { LoraCheck };

export interface CheckOutcome {
  check: Extract<LoraCheck, { state: 'ok' | 'unusable' }>;
  sha256?: string;
}

export function checkLora(path: string, base: BaseWeights): CheckOutcome {
  try {
    const lora = readLora(path, base);
    return {
      check: {
        state: 'ok',
        format: lora.format,
        layers: lora.modules.length,
        unmatched: lora.unmatched.length,
        rank: lora.rank,
      },
      sha256: lora.sha256,
    };
  } catch (err) {
    if (err instanceof LoraError || err instanceof WeightsError)
      return { check: { state: 'unusable', reason: err.defect } };
    return { check: { state: 'unusable', reason: `could not be read (${(err as Error).message})` } };
  }
}

/** SHA-256 of a file, streamed so a large LoRA does not hold up the bot. */
export function hashFile(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}
