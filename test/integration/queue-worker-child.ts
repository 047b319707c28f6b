// A BullMQ worker in its own process, for the dead-worker tests in queue.test.ts. It reports
// each job it starts on stdout, then either hangs (MODE=hang, to be killed) or blocks its event
// loop for BLOCK_MS (MODE=block, so its lock lapses) before completing.
import { startBullRunner } from '../../bot/queue/index.ts';

const env = process.env;
await startBullRunner<{ label: string }, { label: string; attempt: number }>(
  async (job) => {
    process.stdout.write(`started ${job.id}\n`);
    if (env.MODE === 'hang') await new Promise(() => undefined);
    const until = Date.now() + Number(env.BLOCK_MS);
    while (Date.now() < until) {
      // Spinning on purpose: a stuck engine call, as the lock renewal timer sees it.
    }
    process.stdout.write(`done ${job.id}\n`);
    return { value: { label: 'child', attempt: job.attempt } };
  },
  {
    redisUrl: env.REDIS_URL!,
    queueName: env.QUEUE_NAME!,
    prefix: env.PREFIX!,
    lockDurationMs: 1000,
    stalledIntervalMs: 500,
  },
);
process.stdout.write('ready\n');
