// Getting replies into Slack. Ephemeral replies go through the request's response_url; a job
// gets a status message (chat.postMessage) that is edited as it runs (chat.update) and, when
// it is done, one message holding the card, the buttons and the uploaded pictures
// (files.uploadV2 with blocks), while the status line shrinks to "Done in …".
// Every write to a channel waits its turn in the ChannelPacer. The status message is recorded
// with the job (queue.setDelivery), so a restarted bot adopts the jobs it finds running or
// finished-but-undelivered, and queue.claimDelivery lets exactly one process post the result.

import type { RespondArguments, webApi } from '@slack/bolt';
import { progressReply } from '../../commands/actions.ts';
import { type Following, followJob } from '../../commands/follow.ts';
import { type MessageReply, type ProgressReply, type Reply, userErrorReply } from '../../commands/reply.ts';
import type { CommandOutcome, ComposeRecord } from '../../commands/service.ts';
import type { App } from '../app.ts';
import type { Logger } from '../log.ts';
import { slackFileLimit } from '../render/index.ts';
import { clip, mrkdwn, renderReply, type SlackMessage } from './blocks.ts';
import type { Place } from './context.ts';
import type { ChannelPacer } from './pacer.ts';
import { withWeightsButton } from './weights.ts';

export interface DeliveryOptions {
  client: webApi.WebClient;
  bot: App;
  pacer: ChannelPacer;
  log: Logger;
  /** least time between two progress edits of one status message */
  progressIntervalMs: number;
  /** the workspace's file size cap, when an admin lowered Slack's 1 GB */
  fileLimit?: number;
  /** the bot's user name (auth.test), to name it in "invite me" */
  botName?: string;
}

interface StatusMessage {
  jobId: string;
  channel: string;
  threadTs?: string;
  ts: string;
  heading?: string;
  /** set by a Cancel press: the final edit says who cancelled */
  final?: Reply;
  following?: Following;
}

const PARENT_LABEL = {
  rerun: 'rerun',
  seed: 'new seed',
  merge: 'compared with merging',
  tweak: 'tweak',
} as const;

/** "@user · rerun · `/compose …`" over a status; "for @user · rerun" over a card, which shows the command. */
export function jobHeading(job: ComposeRecord, withCommand = true): string {
  const parent = job.data.parent ? ` · ${PARENT_LABEL[job.data.parent.action]}` : '';
  if (!withCommand) return `for <@${job.owner.userId}>${parent}`;
  return `<@${job.owner.userId}>${parent} · ${mrkdwn(`\`/compose ${clip(job.data.text, 500)}\``)}`;
}

/** The Slack error code of a failed Web API call, if it has one. */
export function slackErrorCode(e: unknown): string | undefined {
  const data = (e as { data?: { error?: unknown } }).data;
  return typeof data?.error === 'string' ? data.error : undefined;
}

const CANNOT_POST = new Set(['not_in_channel', 'channel_not_found', 'is_archived', 'restricted_action']);

function cannotPostReply(e: unknown, botName = 'clora'): MessageReply {
  const code = slackErrorCode(e);
  if (code !== undefined && CANNOT_POST.has(code)) {
    return userErrorReply(
      `I can't post in this conversation (${code}).`,
      `Invite me with \`/invite @${botName}\` (or use me in a channel I am in), then try again.`,
    );
  }
  return userErrorReply(
    `Slack did not take the message (${code ?? (e as Error).message}).`,
    'Try again in a minute.',
  );
}

/** Where a job's status message is, as the job's record keeps it. */
interface StoredStatus {
  channel: string;
  ts: string;
  threadTs?: string;
}

function storedStatus(job: ComposeRecord): StoredStatus | undefined {
  const d = job.delivery;
  if (typeof d?.channel !== 'string' || typeof d.ts !== 'string') return undefined;
  return {
    channel: d.channel,
    ts: d.ts,
    ...(typeof d.threadTs === 'string' ? { threadTs: d.threadTs } : {}),
  };
}

const FINAL_STATES = new Set(['completed', 'failed', 'cancelled']);

export class SlackDelivery {
  private readonly statuses = new Map<string, StatusMessage>();
  /** Jobs started through this process, and jobs being looked at for adoption. */
  private readonly mine = new Set<string>();
  private readonly adopting = new Set<string>();
  private readonly offs: (() => void)[] = [];
  private stopped = false;

  constructor(private readonly o: DeliveryOptions) {}

  /** Shows what a command or button returned: a reply, an edit of the pressed message, or a new job. */
  async deliver(outcome: CommandOutcome, place: Place): Promise<void> {
    const { reply } = outcome;
    // A reply meant for one user never replaces a message the whole channel sees.
    const privateOverPublic = reply.ephemeral && place.source?.ephemeral === false;
    if (outcome.replace && place.source && !privateOverPublic) {
      const status = outcome.jobId ? this.statuses.get(outcome.jobId) : undefined;
      if (status) status.final = reply;
      return this.replace(reply, place, status?.heading);
    }
    if (outcome.jobId && reply.kind === 'progress') {
      // A picker that was only there to start this job has done its work.
      if (place.source?.ephemeral) await this.dismiss(place);
      return this.startJob(outcome.jobId, reply, place);
    }
    return this.send(reply, place);
  }

  /** A new message: ephemeral through response_url, else posted in the channel (with pictures, uploaded). */
  async send(reply: Reply, place: Place): Promise<void> {
    if (reply.kind === 'progress' || reply.ephemeral) return this.ephemeral(reply, place);
    try {
      if (reply.images?.length) await this.upload(reply, place);
      else await this.post(renderReply(reply), place);
    } catch (e) {
      this.o.log.warn(`could not post in ${place.channel}: ${(e as Error).message}`);
      await this.ephemeral(cannotPostReply(e, this.o.botName), place);
    }
  }

  /** A reply only the user sees. */
  async ephemeral(reply: Reply, place: Place): Promise<void> {
    // Ephemeral messages cannot carry uploaded files.
    const note =
      reply.kind === 'message' && reply.images?.length
        ? 'Pictures show when the bot posts in the channel, not in replies only you can see.'
        : undefined;
    const message = renderReply(reply, { note });
    try {
      if (place.respond) {
        const args: RespondArguments = { response_type: 'ephemeral', ...message };
        if (place.source) args.replace_original = false;
        await place.respond(args);
      } else {
        await this.o.client.chat.postEphemeral({ channel: place.channel, user: place.userId, ...message });
      }
    } catch (e) {
      this.o.log.warn(`could not send an ephemeral reply in ${place.channel}: ${(e as Error).message}`);
    }
  }

  /**
   * Takes over the Slack jobs this process did not start (they began before a restart) as
   * their events arrive, the ones missed while the bot was down first (app.listen()).
   */
  adopt(): void {
    const onEvent = (e: { id: string }) => {
      if (this.stopped || this.statuses.has(e.id) || this.mine.has(e.id) || this.adopting.has(e.id)) return;
      this.adopting.add(e.id);
      void this.adoptJob(e.id).finally(() => this.adopting.delete(e.id));
    };
    const { queue } = this.o.bot;
    for (const type of ['started', 'progress', 'completed', 'failed', 'cancelled'] as const)
      this.offs.push(queue.on(type, onEvent));
  }

  /** Stops following jobs and refuses new channel writes. */
  stop(): void {
    this.stopped = true;
    for (const off of this.offs.splice(0)) off();
    for (const status of this.statuses.values()) status.following?.stop();
    this.statuses.clear();
    this.o.pacer.close();
  }

  private async replace(reply: Reply, place: Place, heading?: string): Promise<void> {
    const source = place.source!;
    const message = renderReply(reply, { heading });
    try {
      if (source.ephemeral) {
        // Only the response_url can edit an ephemeral message.
        await place.respond?.({ replace_original: true, ...message });
      } else {
        await this.edit(place.channel, source.ts, message);
      }
    } catch (e) {
      this.o.log.warn(`could not edit a message in ${place.channel}: ${(e as Error).message}`);
      await this.ephemeral(reply, place);
    }
  }

  private async dismiss(place: Place): Promise<void> {
    try {
      await place.respond?.({ delete_original: true });
    } catch (e) {
      this.o.log.debug(`could not remove an ephemeral picker: ${(e as Error).message}`);
    }
  }

  private async startJob(jobId: string, reply: ProgressReply, place: Place): Promise<void> {
    const { bot } = this.o;
    this.mine.add(jobId);
    const job = await bot.queue.get(jobId);
    const heading = job ? jobHeading(job) : undefined;
    let ts: string | undefined;
    try {
      const posted = await this.post(renderReply(reply, { heading }), place);
      ts = posted.ts;
    } catch (e) {
      // Nobody would see the job: cancel it rather than spend the GPU on it.
      await bot.queue.cancel(jobId);
      this.forgetLater(jobId);
      this.o.log.warn(`job ${jobId}: no status message in ${place.channel}: ${(e as Error).message}`);
      await this.ephemeral(cannotPostReply(e, this.o.botName), place);
      return;
    }
    if (!ts || this.stopped) return;
    const status: StatusMessage = { jobId, channel: place.channel, ts, heading };
    if (place.threadTs) status.threadTs = place.threadTs;
    const stored: StoredStatus = {
      channel: status.channel,
      ts,
      ...(status.threadTs ? { threadTs: status.threadTs } : {}),
    };
    // Without it a restart leaves the status at its last step; the job itself runs on regardless.
    await bot.queue.setDelivery(jobId, { ...stored }).catch((e: Error) => {
      this.o.log.warn(`job ${jobId}: could not record its status message: ${e.message}`);
    });
    this.follow(status);
  }

  private follow(status: StatusMessage): void {
    const { bot } = this.o;
    this.statuses.set(status.jobId, status);
    status.following = followJob(bot.queue, bot.commands, status.jobId, (r) => this.onProgress(status, r), {
      minIntervalMs: this.o.progressIntervalMs,
      onFinal: (r, state) => this.finish(status, r, state),
    });
  }

  /** A Slack job started before a restart: follow its recorded status message, or post its outcome in its channel. */
  private async adoptJob(jobId: string): Promise<void> {
    const { bot, log } = this.o;
    const job = await bot.queue.get(jobId);
    if (job?.data.origin.platform !== 'slack' || job.delivered) return;
    if (this.stopped || this.statuses.has(jobId) || this.mine.has(jobId)) return;
    const stored = storedStatus(job);
    if (stored) {
      log.info(`job ${jobId}: adopted from before a restart`);
      this.follow({ jobId, ...stored, heading: jobHeading(job) });
      return;
    }
    // The bot stopped before it could post a status message: only the outcome can be given.
    if (!FINAL_STATES.has(job.state) || !(await this.claim(jobId))) return;
    log.info(`job ${jobId}: delivering the outcome of a job from before a restart`);
    const reply = await bot.commands.jobReply(jobId);
    const place: Place = { channel: job.data.origin.channel, userId: job.owner.userId };
    if (job.state === 'completed' && reply.kind === 'message' && reply.images?.length) {
      await this.upload(withWeightsButton(reply, job), place, jobHeading(job, false)).catch((e: Error) =>
        log.warn(`job ${jobId}: upload failed: ${e.message}`),
      );
    } else {
      await this.send(reply, place);
    }
  }

  // Kept a minute so a Cancel press that lands after the job ended still finds its heading,
  // and the job's last events are not taken for one to adopt.
  private forgetLater(jobId: string): void {
    setTimeout(() => {
      this.statuses.delete(jobId);
      this.mine.delete(jobId);
    }, 60_000).unref();
  }

  /** True for the one process that delivers this job's outcome; a queue that cannot say errs on delivering. */
  private async claim(jobId: string): Promise<boolean> {
    try {
      return await this.o.bot.queue.claimDelivery(jobId);
    } catch (e) {
      this.o.log.warn(`job ${jobId}: could not claim its delivery: ${(e as Error).message}`);
      return true;
    }
  }

  private async onProgress(status: StatusMessage, reply: Reply): Promise<void> {
    // After a Cancel press the message says who cancelled; the job's last steps must not undo that.
    if (status.final) return;
    await this.progress(status, reply);
  }

  private async progress(status: StatusMessage, reply: Reply): Promise<void> {
    try {
      await this.edit(status.channel, status.ts, renderReply(reply, { heading: status.heading }));
    } catch (e) {
      this.o.log.warn(`job ${status.jobId}: status edit failed: ${(e as Error).message}`);
    }
  }

  private async finish(status: StatusMessage, reply: Reply, state: 'completed' | 'failed' | 'cancelled') {
    const { bot, log } = this.o;
    this.forgetLater(status.jobId);
    // Another process (this bot before a restart) may have answered already.
    if (!(await this.claim(status.jobId))) return;
    const job = state === 'completed' ? await bot.queue.get(status.jobId) : undefined;
    if (!job || reply.kind !== 'message' || !reply.images?.length) {
      await this.progress(status, status.final ?? reply);
      return;
    }
    const place: Place = { channel: status.channel, userId: job.owner.userId };
    if (status.threadTs) place.threadTs = status.threadTs;
    try {
      await this.upload(withWeightsButton(reply, job), place, jobHeading(job, false));
    } catch (e) {
      log.warn(`job ${status.jobId}: upload failed: ${(e as Error).message}`);
      await this.progress(
        status,
        userErrorReply(
          `The picture is done but Slack did not take the upload (${slackErrorCode(e) ?? (e as Error).message}).`,
          'Run /compose again, or /queue to see the job.',
        ),
      );
      return;
    }
    const done = progressReply(status.jobId, await bot.commands.progressOf(job));
    try {
      await this.edit(
        status.channel,
        status.ts,
        renderReply(done, { heading: status.heading, note: 'The picture is in the message below.' }),
      );
    } catch (e) {
      log.warn(`job ${status.jobId}: final status edit failed: ${(e as Error).message}`);
    }
  }

  private post(message: SlackMessage, place: Place): Promise<webApi.ChatPostMessageResponse> {
    const { client, pacer } = this.o;
    return pacer.run(place.channel, () =>
      client.chat.postMessage({
        channel: place.channel,
        ...(place.threadTs ? { thread_ts: place.threadTs } : {}),
        ...message,
      }),
    );
  }

  /** Edits of one message coalesce while they wait: only the newest is sent. */
  private edit(channel: string, ts: string, message: SlackMessage): Promise<unknown> {
    const { client, pacer } = this.o;
    return pacer.run(
      channel,
      () => client.chat.update({ channel, ts, ...message }),
      `update:${channel}:${ts}`,
    );
  }

  /** One message: the reply's blocks with its pictures attached (files.uploadV2). */
  private async upload(reply: MessageReply, place: Place, heading?: string): Promise<void> {
    const { client, pacer } = this.o;
    const limit = slackFileLimit(this.o.fileLimit);
    const images = reply.images ?? [];
    const fitting = images.filter((i) => i.data.byteLength <= limit);
    const note =
      fitting.length < images.length
        ? `${images.length - fitting.length} picture(s) were over this workspace's file size limit.`
        : undefined;
    const message = renderReply(reply, { heading, note });
    const file_uploads = fitting.map((image) => ({
      file: Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength),
      filename: image.filename,
      title: clip(image.alt, 250),
      alt_text: clip(image.alt, 1000),
    }));
    if (file_uploads.length === 0) {
      await this.post(message, place);
      return;
    }
    const target = place.threadTs
      ? { channel_id: place.channel, thread_ts: place.threadTs }
      : { channel_id: place.channel };
    await pacer.run(place.channel, () =>
      client.files.uploadV2({ ...target, blocks: message.blocks, file_uploads }),
    );
  }
}
