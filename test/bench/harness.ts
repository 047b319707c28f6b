// Shared pieces of the benchmarks: the report line format and robust timing.

/** Prints one figure as `name: value unit (goal …)`. */
export type Report = (name: string, value: number, unit: string, goal?: string) => void;

export function printReport(name: string, value: number, unit: string, goal?: string): void {
  const digits = Math.abs(value) >= 100 ? 1 : Math.abs(value) >= 1 ? 3 : 4;
  console.log(`${name}: ${value.toFixed(digits)} ${unit}${goal ? ` (goal ${goal})` : ''}`);
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

/**
 * Times several async functions side by side: each round runs every function once, in
 * rotating order, so drift in machine load hits all of them alike. Returns medians in ms.
 */
export async function timeSideBySide(
  fns: Record<string, () => Promise<unknown>>,
  opts: { warmup?: number; rounds?: number } = {},
): Promise<Record<string, number>> {
  const names = Object.keys(fns);
  for (let i = 0; i < (opts.warmup ?? 1); i++) for (const n of names) await fns[n]();
  const samples: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  const rounds = opts.rounds ?? 5;
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < names.length; k++) {
      const n = names[(k + r) % names.length];
      const t0 = performance.now();
      await fns[n]();
      samples[n].push(performance.now() - t0);
    }
  }
  return Object.fromEntries(names.map((n) => [n, median(samples[n])]));
}
