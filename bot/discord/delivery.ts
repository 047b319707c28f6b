// Following jobs on Discord: progress edits the interaction's reply (throttled), the result
// replaces it; once the interaction token is too old (Discord keeps it 15 minutes) the result
// goes to the channel as a bot message instead. Jobs this process did not start following (it
// restarted meanwhile) are finished the same way from what the job's origin recorded; the
// queue's delivery claim keeps a job from being answered twice.

import { type Client, InteractionWebhook, Routes } from 'discord.js';
import { type Following, followJob } from '../../commands/follow.ts';
import type { JobOrigin } from '../../commands/jobs.ts';
import type { Reply } from '../../commands/reply.ts';
import type { ComposeRecord } from '../../commands/service.ts';
import type { App } from '../app.ts';
import type { Logger } from '../log.ts';
import { discordAttachmentLimit } from '../render/index.ts';
import { describeError, isGoneInteraction } from './errors.ts';
import { channelPost, editOptions, renderReply } from './render.ts';

/** Where a job's messages go: the interaction's reply while its token lasts, then its channel. */
export interface ReplyTarget {
  applicationId: string;
  token: string;
  /** when the interaction was created (ms since the epoch); its token lasts 15 minutes from then */
  issuedAt: number;
  channelId: string;
  userId: string;
  /** the interaction's attachment_size_limit */
  maxAttachmentBytes: number;
}

/** Discord's 15 minutes less a minute's margin for clocks and slow uploads. */
export const DEFAULT_TOKEN_LIFETIME_MS = 14 * 60 * 1000;

/** The target as a job's origin keeps it (JSON), so a restarted bot can still deliver. */
export function originMessage(target: ReplyTarget): NonNullable<JobOrigin['message']> {
  return {
    kind: 'interaction',
    application: target.applicationId,
    token: target.token,
    issuedAt: target.issuedAt,
    attachmentLimit: target.maxAttachmentBytes,
  };
}

/** The target a job's origin recorded, when it came from a Discord interaction. */
export function targetOf(job: ComposeRecord): ReplyTarget | undefined {
  const o = job.data.origin;
  const m = o.message;
  if (o.platform !== 'discord' || m?.kind !== 'interaction') return undefined;
  if (typeof m.application !== 'string' || typeof m.token !== 'string' || typeof m.issuedAt !== 'number')
    return undefined;
  return {
    applicationId: m.application,
    token: m.token,
    issuedAt: m.issuedAt,
    channelId: o.channel,
    userId: o.userId,
    maxAttachmentBytes: discordAttachmentLimit(
      typeof m.attachmentLimit === 'number' ? m.attachmentLimit : null,
    ),
  };
}

export interface DeliveryOptions {
  /** least time between two progress edits of one message */
  progressIntervalMs: number;
  /** how long after an interaction its token is still used */
  tokenLifetimeMs: number;
  now: () => number;
}

export class JobDelivery {
  private readonly follows = new Map<string, Following>();
  private readonly offs: (() => void)[] = [];
  private stopped = false;

  constructor(
    private readonly app: App,
    private readonly client: Client<true>,
    private readonly log: Logger,
    private readonly options: DeliveryOptions,
  ) {}

  /** Edits the target's reply as the job moves, and puts the result there (or in the channel). */
  follow(jobId: string, target: ReplyTarget): void {
    if (this.stopped || this.follows.has(jobId)) return;
    let gone = false;
    const following = followJob(
      this.app.queue,
      this.app.commands,
      jobId,
      async (reply) => {
        if (gone || !this.alive(target)) return;
        gone = !(await this.editOriginal(target, reply));
      },
      {
        minIntervalMs: this.options.progressIntervalMs,
        onFinal: (reply) => this.finish(jobId, target, reply, gone),
      },
    );
    this.follows.set(jobId, following);
    void following.done.finally(() => this.follows.delete(jobId));
  }

  /** Finishes Discord jobs that end while nobody here follows them (started before a restart). */
  adoptOrphans(): void {
    const onEnd = (e: { id: string }) => {
      if (this.stopped || this.follows.has(e.id)) return;
      void this.finishOrphan(e.id);
    };
    this.offs.push(
      this.app.queue.on('completed', onEnd),
      this.app.queue.on('failed', onEnd),
      this.app.queue.on('cancelled', onEnd),
    );
  }

  stop(): void {
    this.stopped = true;
    for (const off of this.offs.splice(0)) off();
    for (const f of this.follows.values()) f.stop();
    this.follows.clear();
  }

  alive(target: ReplyTarget): boolean {
    return this.options.now() < target.issuedAt + this.options.tokenLifetimeMs;
  }

  private async finishOrphan(jobId: string): Promise<void> {
    const job = await this.app.queue.get(jobId);
    const target = job && targetOf(job);
    if (!target) return;
    this.log.debug(`job ${jobId} ended while no one here followed it; delivering from its origin`);
    await this.finish(jobId, target, await this.app.commands.jobReply(jobId), false);
  }

  private async finish(jobId: string, target: ReplyTarget, reply: Reply, gone: boolean): Promise<void> {
    // Another process (this bot before a restart) may have answered already.
    if (!(await this.claim(jobId))) return;
    if (!gone && this.alive(target) && (await this.editOriginal(target, reply))) return;
    await this.postToChannel(target, reply);
  }

  /** True for the one process that delivers this job's outcome; a queue that cannot say errs on delivering. */
  private async claim(jobId: string): Promise<boolean> {
    try {
      return await this.app.queue.claimDelivery(jobId);
    } catch (e) {
      this.log.warn(`job ${jobId}: could not claim its delivery: ${describeError(e)}`);
      return true;
    }
  }

  /** false when the token no longer works; other failures are logged and count as delivered. */
  private async editOriginal(target: ReplyTarget, reply: Reply): Promise<boolean> {
    try {
      const message = await renderReply(reply, { maxAttachmentBytes: target.maxAttachmentBytes });
      if (message.adjustments.length) this.log.debug(`reply adjusted: ${message.adjustments.join('; ')}`);
      const webhook = new InteractionWebhook(this.client, target.applicationId, target.token);
      await webhook.editMessage('@original', editOptions(message));
      return true;
    } catch (e) {
      if (isGoneInteraction(e)) return false;
      this.log.warn(`could not update a reply: ${describeError(e)}`);
      return true;
    }
  }

  private async postToChannel(target: ReplyTarget, reply: Reply): Promise<void> {
    try {
      const message = await renderReply(reply, { maxAttachmentBytes: target.maxAttachmentBytes });
      // Ephemeral replies cannot go to a channel; only results and their status do.
      if (message.ephemeral) return;
      const { body, files } = channelPost(message, target.userId);
      await this.client.rest.post(Routes.channelMessages(target.channelId), { body, files });
    } catch (e) {
      this.log.warn(`could not post a finished job to channel ${target.channelId}: ${describeError(e)}`);
    }
  }
}
