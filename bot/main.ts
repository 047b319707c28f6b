// npm start: the bot. Discord and/or Slack when their tokens are set; otherwise a local
// playground on 127.0.0.1. Without REDIS_URL the engine runs in this process, on its own
// thread; with it, `npm run worker` processes jobs on any number of hosts.

import { ConfigError, configKeysText, loadConfig, redact, redactText } from '../config/index.ts';
import type { Adapter } from './adapter.ts';
import { startApp } from './app.ts';
import { createLogger } from './log.ts';
import { onShutdownSignals, startOps } from './ops/index.ts';
import { StartProblem } from './start-problem.ts';

const USAGE = `usage: npm start
Starts the bot: Discord and/or Slack when their tokens are set, else the local playground.
It takes no arguments; it is configured by environment variables (or a JSON file named by
CLORA_CONFIG), with these defaults:

${configKeysText()}`;

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (args.length > 0) {
    process.stderr.write(`npm start takes no arguments (got ${args.join(' ')}); see npm start -- --help\n`);
    process.exit(2);
  }
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig(process.env);
  } catch (e) {
    process.stderr.write(`${e instanceof ConfigError ? e.message : String(e)}\n`);
    process.exit(2);
  }
  const log = createLogger(config.logLevel, 'bot', config.ops.logFormat);
  const adapters: Adapter[] = [];
  const usePlayground = !config.discord && !config.slack;
  // The playground's address is the first thing a newcomer needs: say it before loading anything.
  if (usePlayground) {
    log.info(
      `playground: open http://${config.playground.host}:${config.playground.port} in a browser (no Discord or Slack token is set)`,
    );
  }
  // Health and metrics come up first, so a probe sees "starting" while the model loads.
  const ops = await startOps(config);
  if (ops)
    log.info(`health and metrics: http://${config.ops.metricsHost}:${ops.server.port}/healthz, /metrics`);
  const app = await startApp(config, { log, instrument: ops?.instrument });
  ops?.watch({
    library: app.library,
    engine: app.engine,
    engineMissing: config.queue.redisUrl ? undefined : app.model().message,
    redisUrl: config.queue.redisUrl,
  });
  log.debug(`configuration: ${JSON.stringify(redact(config))}`);
  const status = app.model();
  if (!status.ready) log.warn(status.message ?? 'no model');

  if (usePlayground) {
    const { startPlayground } = await import('./playground/index.ts');
    adapters.push(await startPlayground(app));
  }
  if (config.discord) {
    const { startDiscord } = await import('./discord/index.ts');
    adapters.push(await startDiscord(app));
  }
  if (config.slack) {
    const { startSlack } = await import('./slack/index.ts');
    adapters.push(await startSlack(app));
  }
  for (const a of adapters) log.info(`${a.name} ready: ${a.address}`);
  // Every adapter listens now: jobs that moved while the bot was down can be delivered.
  app.listen();

  onShutdownSignals(
    async () => {
      // The adapters stay up meanwhile, so a job finishing in the grace still reaches its user.
      await app.drain(config.ops.shutdownGraceSeconds * 1000);
      await Promise.allSettled(adapters.map((a) => a.stop()));
      await app.close();
      await ops?.close();
    },
    { graceMs: config.ops.shutdownGraceSeconds * 1000, log },
  );
}

main().catch((e: unknown) => {
  // A problem the operator can fix is one line; anything else is a bug and keeps its stack.
  const told =
    e instanceof StartProblem ? e.message : e instanceof Error ? (e.stack ?? e.message) : String(e);
  process.stderr.write(`clora-bot could not start: ${redactText(told)}\n`);
  process.exit(1);
});
