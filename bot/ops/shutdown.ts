// SIGTERM and SIGINT: the first starts a graceful stop (the running job finishes, or is handed
// back to the queue once SHUTDOWN_GRACE_SECONDS have passed); a second one stops at once.

import type { Logger } from '../log.ts';

// After the grace, a stop that still hangs (an engine call that ignores cancellation) is cut short.
const HARD_STOP_AFTER_GRACE_MS = 15_000;

export function onShutdownSignals(
  stop: (signal: NodeJS.Signals) => Promise<void>,
  options: { graceMs: number; log: Logger },
): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      options.log.warn(
        `${signal} again: stopping now; a running job is picked up by another worker once its lock lapses`,
      );
      process.exit(130);
    }
    stopping = true;
    options.log.info(
      `${signal}: stopping; a running job has ${options.graceMs / 1000} s to finish (send ${signal} again to stop now)`,
    );
    setTimeout(() => {
      options.log.error('the graceful stop did not finish in time; stopping now');
      process.exit(1);
    }, options.graceMs + HARD_STOP_AFTER_GRACE_MS).unref();
    stop(signal).then(
      () => process.exit(0),
      (e: unknown) => {
        options.log.error('stopping failed', e);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
