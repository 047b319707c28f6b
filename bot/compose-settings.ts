// The /compose limits and defaults an operator's configuration sets (MAX_LORAS, MAX_STEPS,
// MAX_SIZE), as every front end applies them: the chat adapters, the playground and the CLI.

import {
  type ComposeSettings,
  composeSettings,
  DEFAULT_COMPOSE_DEFAULTS,
  DEFAULT_COMPOSE_LIMITS,
} from '../commands/compose/index.ts';
import type { LimitsConfig } from '../config/index.ts';

export function composeSettingsOf(
  limits: Pick<LimitsConfig, 'maxLoras' | 'maxSteps' | 'maxSize'>,
): ComposeSettings {
  // The configuration admits only multiples of 64; a MAX_SIZE under the usual minimum or default narrows both.
  const largestSide = limits.maxSize;
  return composeSettings({
    limits: {
      maxLoras: limits.maxLoras,
      maxSteps: limits.maxSteps,
      maxSide: largestSide,
      minSide: Math.min(DEFAULT_COMPOSE_LIMITS.minSide, largestSide),
    },
    defaults: {
      width: Math.min(DEFAULT_COMPOSE_DEFAULTS.width, largestSide),
      height: Math.min(DEFAULT_COMPOSE_DEFAULTS.height, largestSide),
    },
  });
}
