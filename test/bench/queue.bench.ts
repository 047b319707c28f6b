// Queue overhead with a trivial processor, BullQueue (Redis at CLORA_BENCH_REDIS_URL, default
// redis://127.0.0.1:6379, worker in this process) against LocalQueue:
// - enqueue → pickup latency, one job at a time on an idle worker: p50 and p99
// - enqueue → completed event at the bot, one at a time: p50
// - throughput: 1000 jobs enqueued at once, 8 runners, until the last completed event
// Runs with the other benchmarks (npm run bench -- queue) or alone: npx tsx test/bench/queue.bench.ts
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import {
  BullQueue,
  type JobProcessor,
  type JobQueue,
  type JobRunner,
  LocalQueue,
  type QueueSettings,
  startBullRunner,
} from '../../bot/queue/index.ts';
import { isEntryPoint } from '../../engine/entry-point.ts';
import { percentile, printReport, type Report } from './harness.ts';

interface BenchJob {
  n: number;
}

const redisUrl = process.env.CLORA_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const LATENCY_JOBS = 300;
const THROUGHPUT_JOBS = 1000;
const RUNNERS = 8;
const settings: QueueSettings = {
  limits: { perUser: THROUGHPUT_JOBS, perScope: THROUGHPUT_JOBS },
  resultTtlMs: 120_000,
};

interface Subject {
  name: string;
  open(): Promise<{ queue: JobQueue<BenchJob, null>; worker: JobRunner }>;
}

/** Where each job was picked up (ms on this process's clock), by job number. */
const pickedUpAt = new Map<number, number>();
const trivial: JobProcessor<BenchJob, null> = async (job) => {
  pickedUpAt.set(job.data.n, performance.now());
  return { value: null };
};

function subjects(prefix: string): Subject[] {
  return [
    {
      name: 'local',
      open: async () => {
        const queue = new LocalQueue<BenchJob, null>(settings);
        return { queue, worker: queue.startRunner(trivial, { concurrency: RUNNERS }) };
      },
    },
    {
      name: 'bullmq',
      open: async () => {
        const queueName = `bench-${randomUUID().slice(0, 8)}`;
        const queue = await BullQueue.open<BenchJob, null>({ redisUrl, queueName, prefix, ...settings });
        const worker = await startBullRunner(trivial, { redisUrl, queueName, prefix, concurrency: RUNNERS });
        return { queue, worker };
      },
    },
  ];
}

/** Resolves when the queue reports `id` completed; rejects if it fails. */
function completions(queue: JobQueue<BenchJob, null>) {
  const waiting = new Map<string, { resolve: () => void; reject: (e: Error) => void }>();
  const settled = new Map<string, Error | undefined>();
  const settle = (id: string, error?: Error) => {
    settled.set(id, error);
    const waiter = waiting.get(id);
    if (waiter) error ? waiter.reject(error) : waiter.resolve();
  };
  queue.on('completed', ({ id }) => settle(id));
  queue.on('failed', ({ id, error }) => settle(id, new Error(`bench job ${id} failed: ${error.message}`)));
  return (id: string) =>
    new Promise<void>((resolve, reject) => {
      if (!settled.has(id)) waiting.set(id, { resolve, reject });
      else if (settled.get(id)) reject(settled.get(id));
      else resolve();
    });
}

async function enqueue(queue: JobQueue<BenchJob, null>, n: number): Promise<string> {
  const outcome = await queue.enqueue({ n }, { userId: `user-${n % 50}`, scope: 'bench' });
  if (!outcome.ok) throw new Error(`bench job refused: ${outcome.message}`);
  return outcome.id;
}

async function measure(subject: Subject, report: Report): Promise<void> {
  const { queue, worker } = await subject.open();
  const completed = completions(queue);
  try {
    pickedUpAt.clear();
    const pickup: number[] = [];
    const roundTrip: number[] = [];
    for (let n = 0; n < LATENCY_JOBS; n++) {
      const sent = performance.now();
      const id = await enqueue(queue, n);
      await completed(id);
      roundTrip.push(performance.now() - sent);
      pickup.push(pickedUpAt.get(n)! - sent);
    }
    // The first jobs warm connections and script caches.
    const warm = (xs: number[]) => xs.slice(20);
    const pickupGoal = subject.name === 'local' ? '≤ 5 ms' : '≤ 50 ms';
    report(`queue ${subject.name} enqueue→pickup p50`, percentile(warm(pickup), 50), 'ms');
    report(`queue ${subject.name} enqueue→pickup p99`, percentile(warm(pickup), 99), 'ms', pickupGoal);
    report(`queue ${subject.name} enqueue→completed event p50`, percentile(warm(roundTrip), 50), 'ms');

    const start = performance.now();
    const ids = await Promise.all(
      Array.from({ length: THROUGHPUT_JOBS }, (_, i) => enqueue(queue, LATENCY_JOBS + i)),
    );
    await Promise.all(ids.map(completed));
    const seconds = (performance.now() - start) / 1000;
    report(
      `queue ${subject.name} throughput (${RUNNERS} runners)`,
      THROUGHPUT_JOBS / seconds,
      'jobs/s',
      subject.name === 'local' ? undefined : '≥ 100 jobs/s',
    );
  } finally {
    await worker.close();
    await queue.close();
  }
}

export async function run(report: Report): Promise<void> {
  const prefix = `clora-bench-${randomUUID().slice(0, 8)}`;
  try {
    for (const subject of subjects(prefix)) await measure(subject, report);
  } finally {
    const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
    redis.on('error', () => undefined);
    let cursor = '0';
    try {
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
        if (keys.length > 0) await redis.unlink(...keys);
        cursor = next;
      } while (cursor !== '0');
    } finally {
      redis.disconnect();
    }
  }
}

if (isEntryPoint(import.meta.url)) await run(printReport);
