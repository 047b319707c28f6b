// Reads a diffusers scheduler_config.json the way `<Class>.from_config` does: every key the
// class declares takes the given value or the class default; keys it does not declare are ignored.

import { InputError } from '../errors.ts';

export class SchedulerConfigError extends InputError {
  override name = 'SchedulerConfigError';
}

export interface ConfigField<T> {
  readonly fallback: T;
  parse(value: unknown, key: string): T;
}

function fail(key: string, expected: string, value: unknown): never {
  throw new SchedulerConfigError(
    `scheduler config '${key}' must be ${expected}, got ${JSON.stringify(value)}`,
  );
}

// Python's json writes ±Infinity as bare tokens JSON.parse rejects, so configs carry them as strings.
function toNumber(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value !== 'string') return undefined;
  const text = value.trim().toLowerCase();
  if (text === '-infinity' || text === '-inf') return Number.NEGATIVE_INFINITY;
  if (text === 'infinity' || text === 'inf') return Number.POSITIVE_INFINITY;
  return undefined;
}

export function num(fallback: number): ConfigField<number> {
  return {
    fallback,
    parse(value, key) {
      const parsed = toNumber(value);
      return parsed === undefined || Number.isNaN(parsed) ? fail(key, 'a number', value) : parsed;
    },
  };
}

export function int(fallback: number): ConfigField<number> {
  return {
    fallback,
    parse(value, key) {
      return typeof value === 'number' && Number.isInteger(value) ? value : fail(key, 'an integer', value);
    },
  };
}

export function optionalNum(): ConfigField<number | null> {
  return {
    fallback: null,
    parse(value, key) {
      if (value === null) return null;
      const parsed = toNumber(value);
      return parsed === undefined || Number.isNaN(parsed) ? fail(key, 'a number or null', value) : parsed;
    },
  };
}

export function flag(fallback: boolean): ConfigField<boolean> {
  return {
    fallback,
    parse(value, key) {
      return typeof value === 'boolean' ? value : fail(key, 'true or false', value);
    },
  };
}

export function text(fallback: string): ConfigField<string> {
  return {
    fallback,
    parse(value, key) {
      return typeof value === 'string' ? value : fail(key, 'a string', value);
    },
  };
}

export function optionalText(): ConfigField<string | null> {
  return {
    fallback: null,
    parse(value, key) {
      return value === null || typeof value === 'string' ? value : fail(key, 'a string or null', value);
    },
  };
}

export function optionalNumbers(): ConfigField<number[] | null> {
  return {
    fallback: null,
    parse(value, key) {
      if (value === null) return null;
      if (Array.isArray(value) && value.every((v) => typeof v === 'number')) return value.slice();
      return fail(key, 'a list of numbers or null', value);
    },
  };
}

export type ConfigSchema = Record<string, ConfigField<unknown>>;
export type Resolved<S extends ConfigSchema> = {
  [K in keyof S]: S[K] extends ConfigField<infer T> ? T : never;
};

export function resolveConfig<S extends ConfigSchema>(
  schema: S,
  given: Record<string, unknown>,
): Resolved<S> {
  const resolved: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(schema)) {
    resolved[key] = Object.hasOwn(given, key) ? field.parse(given[key], key) : field.fallback;
  }
  return resolved as Resolved<S>;
}

/** A user-actionable error for a config value this port does not implement. */
export function unsupported(scheduler: string, what: string): never {
  throw new SchedulerConfigError(`${scheduler}: ${what} is not supported`);
}

export function requireSupported(ok: boolean, scheduler: string, what: string): void {
  if (!ok) unsupported(scheduler, what);
}

/** The training schedule keys every diffusers scheduler here shares, with diffusers' defaults. */
export const trainingScheduleFields = {
  num_train_timesteps: int(1000),
  beta_start: num(0.0001),
  beta_end: num(0.02),
  beta_schedule: text('linear'),
  trained_betas: optionalNumbers(),
};
