// Estimated start time of a queued job from recent run times: the runners free up as their
// current jobs end, and each job ahead takes the first free runner for a typical run time.

/** Run times kept for the estimate. */
export const RECENT_RUNS = 20;

export function typicalRunMs(recentRunsMs: readonly number[]): number | undefined {
  if (recentRunsMs.length === 0) return undefined;
  return recentRunsMs.reduce((a, b) => a + b, 0) / recentRunsMs.length;
}

/**
 * Milliseconds until a job with `ahead` jobs before it starts, with `runners` jobs able to run at
 * once, of which some are running now with the given elapsed times. Undefined without history.
 */
export function estimateStartMs(
  ahead: number,
  runningElapsedMs: readonly number[],
  runners: number,
  typicalMs: number | undefined,
): number | undefined {
  if (typicalMs === undefined || runners < 1) return undefined;
  const remaining = runningElapsedMs.map((e) => Math.max(0, typicalMs - e)).sort((a, b) => a - b);
  const freeAt = Array.from({ length: runners }, (_, i) => remaining[i] ?? 0);
  for (let k = 0; k < ahead; k++) {
    let first = 0;
    for (let i = 1; i < freeAt.length; i++) if (freeAt[i] < freeAt[first]) first = i;
    freeAt[first] += typicalMs;
  }
  return Math.round(Math.min(...freeAt));
}
