// Chat-front benchmarks:
// - /compose parser throughput (commands per second)
// - the bot's event-loop delay p99 while a composition runs in single-machine mode (goal < 50 ms):
//   the engine is on its own thread, so chat traffic keeps being answered.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { startApp } from '../../bot/app.ts';
import { createLogger } from '../../bot/log.ts';
import { composeSettings, parseCompose } from '../../commands/compose/index.ts';
import { followJob } from '../../commands/follow.ts';
import { loadConfig } from '../../config/index.ts';
import { isEntryPoint } from '../../engine/entry-point.ts';
import { fixtureDir, fixtureLoraFolder } from '../fixtures.ts';
import type { Report } from './harness.ts';

const COMMANDS = [
  'cat:<tabby> penguin:<plush> in a house',
  'a cat:<tabby>@0.8 chasing a penguin:<plush> on the beach --seed 42 --steps 30',
  '"red panda":<rp> fox:<fox-lora> style:<watercolor>@0.6 in a forest --size 512x768 --cfg 7 --neg "blurry, low quality"',
  'dog:<corgi> --sampler dpmpp_2m_karras --method composite --masks',
  'cat:<tabbby> in a house --size 100x100',
];

function parserThroughput(report: Report): void {
  const settings = composeSettings();
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < 2000) {
    for (const c of COMMANDS) parseCompose(c, settings);
    n += COMMANDS.length;
  }
  report('bot.parser.commands_per_second', n / ((performance.now() - t0) / 1000), 'commands/s');
}

async function eventLoopDelay(report: Report): Promise<void> {
  const fixture = fixtureDir();
  const work = mkdtempSync(join(tmpdir(), 'clora-bench-bot-'));
  const loras = fixtureLoraFolder(work);
  const app = await startApp(
    loadConfig({
      MODEL_PATH: join(fixture, 'model'),
      LORA_DIR: loras,
      CACHE_DIR: join(work, 'cache'),
      GUIDANCE_ITERATIONS: '4',
    }),
    { log: createLogger('silent') },
  );
  try {
    await app.library.settled();
    await app.engine!.ready();
    const ctx = {
      platform: 'cli' as const,
      userId: 'bench',
      userName: 'bench',
      scope: 'bench',
      channel: 'bench',
      isAdmin: false,
    };
    // Warm the lazily compiled guidance graph first: compiling is start-up work, not chat time.
    const warm = await app.commands.compose(
      'cat:<tabby> penguin:<plush> in a house --steps 2 --size 256x256',
      ctx,
    );
    await followJob(app.queue, app.commands, warm.jobId!, () => {}, { minIntervalMs: 0 }).done;

    const histogram = monitorEventLoopDelay({ resolution: 5 });
    const outcome = await app.commands.compose(
      'cat:<tabby> penguin:<plush> in a house --steps 12 --size 256x256',
      ctx,
    );
    histogram.enable();
    // Meanwhile the bot keeps answering commands, as it would in a busy channel.
    const chatter = setInterval(() => {
      parseCompose('cat:<tabby> penguin:<plush> in a house --seed 3', composeSettings());
      app.commands.loras();
    }, 20);
    const t0 = performance.now();
    await followJob(app.queue, app.commands, outcome.jobId!, () => {}, { minIntervalMs: 250 }).done;
    clearInterval(chatter);
    histogram.disable();
    report('bot.single_machine.composition_seconds', (performance.now() - t0) / 1000, 's');
    report('bot.single_machine.event_loop_delay_p99', histogram.percentile(99) / 1e6, 'ms', '< 50');
    report('bot.single_machine.event_loop_delay_max', histogram.max / 1e6, 'ms');
  } finally {
    await app.close();
    rmSync(work, { recursive: true, force: true });
  }
}

export async function run(report: Report): Promise<void> {
  parserThroughput(report);
  await eventLoopDelay(report);
}

if (isEntryPoint(import.meta.url)) {
  const { printReport } = await import('./harness.ts');
  await run(printReport);
}
