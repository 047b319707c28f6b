// What /metrics reports: prom-client's process metrics, BullMQ's own queue metrics where a
// Redis queue is in use, and the jobs this process ran (by method and outcome, seconds per job
// and per denoising step, CLoRA's guided iterations, LoRAs per job, peak memory).

import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { ComposeJobData, ComposeJobProgress, ComposeJobValue } from '../../commands/jobs.ts';
import { isUserError, type JobProcessor } from '../queue/index.ts';

export type ComposeProcessor = JobProcessor<ComposeJobData, ComposeJobValue, ComposeJobProgress>;

/** How a run ended, as the jobs counter labels it. */
export type JobOutcome = 'completed' | 'user_error' | 'failed' | 'cancelled';

const ENGINE_MEMORY = 'clora_engine_peak_memory_bytes';

export class BotMetrics {
  readonly registry = new Registry();
  private readonly jobs: Counter<'method' | 'outcome'>;
  private readonly jobSeconds: Histogram<'method'>;
  private readonly stepSeconds: Histogram<'method'>;
  private readonly guidedIterations: Counter<'method'>;
  private readonly lorasPerJob: Histogram;
  /** where text in the Prometheus format comes from besides the registry (BullMQ's queue metrics) */
  private readonly extra: (() => Promise<string>)[] = [];

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    const registers = [this.registry];
    this.jobs = new Counter({
      name: 'clora_jobs_total',
      help: 'Composition runs by method and how they ended',
      labelNames: ['method', 'outcome'],
      registers,
    });
    this.jobSeconds = new Histogram({
      name: 'clora_job_seconds',
      help: 'Wall time of a composition run, start to pictures',
      labelNames: ['method'],
      buckets: [1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200],
      registers,
    });
    this.stepSeconds = new Histogram({
      name: 'clora_step_seconds',
      help: 'Wall time of one denoising step, guidance included',
      labelNames: ['method'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
      registers,
    });
    this.guidedIterations = new Counter({
      name: 'clora_guided_iterations_total',
      help: "CLoRA's latent updates (guidance iterations) run",
      labelNames: ['method'],
      registers,
    });
    this.lorasPerJob = new Histogram({
      name: 'clora_loras_per_job',
      help: 'LoRAs a composition run used (subjects and style)',
      buckets: [0, 1, 2, 3, 4, 5, 6, 8, 12, 16],
      registers,
    });
  }

  /** The peak resident memory of this process, which holds the engine thread; only where an engine runs. */
  watchEngineMemory(): void {
    if (this.registry.getSingleMetric(ENGINE_MEMORY)) return;
    new Gauge({
      name: ENGINE_MEMORY,
      help: 'Peak resident memory of the process running the engine (the engine thread lives in it)',
      registers: [this.registry],
      collect() {
        this.set(process.resourceUsage().maxRSS * 1024);
      },
    });
  }

  /** Adds text already in the Prometheus format, e.g. BullMQ's `queue.exportPrometheusMetrics()`. */
  addSource(source: () => Promise<string>): void {
    this.extra.push(source);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  async render(): Promise<string> {
    const parts = [await this.registry.metrics()];
    for (const source of this.extra) {
      // A source that cannot answer (Redis away) must not hide the rest.
      const text = await source().catch(() => '');
      if (text) parts.push(text.endsWith('\n') ? text : `${text}\n`);
    }
    return parts.join('');
  }

  /** The processor, measured: every run counted by method and outcome, its steps timed. */
  instrument(processor: ComposeProcessor): ComposeProcessor {
    return async (job) => {
      const request = job.data.request;
      const method = request.method;
      const started = performance.now();
      let lastStep = 0;
      let lastAt = started;
      const progress = (p: ComposeJobProgress) => {
        // Steps are reported as they finish; a jump of several shares the time between them.
        if (p.step > lastStep) {
          const now = performance.now();
          const each = (now - lastAt) / 1000 / (p.step - lastStep);
          for (let s = lastStep; s < p.step; s++) this.stepSeconds.observe({ method }, each);
          [lastStep, lastAt] = [p.step, now];
        }
        return job.progress(p);
      };
      this.lorasPerJob.observe(request.bindings.length + (request.style ? 1 : 0));
      let outcome: JobOutcome = 'failed';
      try {
        const output = await processor({ ...job, progress });
        outcome = 'completed';
        const updates = output.value.loss?.updates;
        if (updates) this.guidedIterations.inc({ method }, updates);
        return output;
      } catch (e) {
        outcome = job.signal.aborted ? 'cancelled' : isUserError(e) ? 'user_error' : 'failed';
        throw e;
      } finally {
        this.jobs.inc({ method, outcome });
        this.jobSeconds.observe({ method }, (performance.now() - started) / 1000);
      }
    };
  }
}
