// A BullMQ worker in its own process that stops as `npm run worker` does (onShutdownSignals,
// close with SHUTDOWN grace), for shutdown.test.ts. Each job reports "started <id>", works for
// WORK_MS unless its signal fires (then it throws, as the engine does when cancelled), and
// reports "done <id>".
import { createLogger } from '../../bot/log.ts';
import { onShutdownSignals } from '../../bot/ops/index.ts';
import { startBullRunner } from '../../bot/queue/index.ts';

const env = process.env;
const worker = await startBullRunner<{ label: string }, { label: string; by: string }>(
  async (job) => {
    process.stdout.write(`started ${job.id}\n`);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, Number(env.WORK_MS));
      job.signal.addEventListener('abort', () => {
        clearTimeout(timer);
        reject(job.signal.reason);
      });
    });
    process.stdout.write(`done ${job.id}\n`);
    return { value: { label: job.data.label, by: 'child' } };
  },
  { redisUrl: env.REDIS_URL!, queueName: env.QUEUE_NAME!, prefix: env.PREFIX! },
);
const graceMs = Number(env.GRACE_MS);
onShutdownSignals(() => worker.close({ graceMs }), { graceMs, log: createLogger('info', 'worker') });
process.stdout.write('ready\n');
