// The /compose limits and defaults an operator's configuration sets (MAX_LORAS, MAX_STEPS,
// MAX_SIZE) and the model's own size, as every front end applies them: the chat adapters,
// the playground and the CLI.

import { type ComposeSettings, composeSettings, DEFAULT_COMPOSE_LIMITS } from '../commands/compose/index.ts';
import type { LimitsConfig } from '../config/index.ts';
import { defaultImageSize } from '../engine/clora/spec.ts';

/**
 * `nativeSize` is the model's own side where this process can read the model; without it a
 * request carries no size and the worker fills in its model's.
 */
export function composeSettingsOf(
  limits: Pick<LimitsConfig, 'maxLoras' | 'maxSteps' | 'maxSize'>,
  nativeSize?: number,
): ComposeSettings {
  // The configuration admits only multiples of 64; a MAX_SIZE under the usual minimum narrows it.
  const largestSide = limits.maxSize;
  const minSide = Math.min(DEFAULT_COMPOSE_LIMITS.minSide, largestSide);
  const side =
    nativeSize === undefined
      ? null
      : defaultImageSize(nativeSize, { minSize: minSide, maxSize: largestSide });
  return composeSettings({
    limits: { maxLoras: limits.maxLoras, maxSteps: limits.maxSteps, maxSide: largestSide, minSide },
    defaults: { width: side, height: side },
  });
}
