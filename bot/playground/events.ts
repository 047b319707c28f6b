// Server-Sent Events to the browser tabs: one stream per tab, carrying the updates of the
// jobs that tab started (followed with followJob) and the model's status. A tab that drops
// its stream keeps its jobs for a short grace period, so a reconnect misses nothing.

import type { ServerResponse } from 'node:http';
import { type Following, followJob } from '../../commands/follow.ts';
import type { Reply } from '../../commands/reply.ts';
import type { ComposeCommands, ComposeQueue } from '../../commands/service.ts';
import type { Logger } from '../log.ts';
import { toWire, type WireReply } from './wire.ts';

export interface EventHubOptions {
  /** comment lines that keep proxies and browsers from closing an idle stream */
  heartbeatMs: number;
  /** how long a disconnected tab's jobs are still followed */
  graceMs: number;
  /** least time between two progress updates of one job */
  progressIntervalMs: number;
  maxTabs: number;
}

export interface JobEvent {
  jobId: string;
  reply: WireReply;
  final: boolean;
}

interface FollowState {
  /** its last update showed it queued: a job ahead starting or ending moves it up */
  queued: boolean;
  /** its final reply is on the way: nothing older may follow it */
  ending: boolean;
  /** the newest latent preview, shown until a newer one comes (progress carries it only once) */
  preview?: string;
}

interface Follow {
  following: Following;
  state: FollowState;
}

interface Tab {
  id: string;
  stream?: { res: ServerResponse; heartbeat: NodeJS.Timeout };
  follows: Map<string, Follow>;
  /** events written while no stream was open, sent on reconnect */
  backlog: string[];
  grace?: NodeJS.Timeout;
  lastActive: number;
}

// Enough for every job a tab can have live; older events are superseded by newer ones anyway.
const MAX_BACKLOG = 100;
export const TAB_ID = /^[A-Za-z0-9_-]{8,64}$/;

export class EventHub {
  private readonly tabs = new Map<string, Tab>();
  private readonly offs: (() => void)[] = [];
  private closed = false;

  constructor(
    private readonly queue: ComposeQueue,
    private readonly commands: ComposeCommands,
    private readonly status: () => unknown,
    private readonly log: Logger,
    private readonly options: EventHubOptions,
  ) {
    // A queued job moves up whenever another starts or ends: show its new place.
    for (const type of ['started', 'completed', 'failed', 'cancelled'] as const) {
      this.offs.push(queue.on(type, (e) => this.refreshQueued(e.id)));
    }
    // A preview rides on one progress event only; keep it, as the record may move on before we read it.
    this.offs.push(
      queue.on('progress', (e) => {
        if (!e.progress.preview) return;
        for (const tab of this.tabs.values()) {
          const follow = tab.follows.get(e.id);
          if (follow) follow.state.preview = e.progress.preview;
        }
      }),
    );
  }

  /** Opens the tab's stream (replacing an older one of the same tab). False when full. */
  connect(tabId: string, res: ServerResponse): boolean {
    const tab = this.tab(tabId);
    if (!tab) return false;
    const older = tab.stream?.res;
    this.detach(tab);
    older?.end();
    if (tab.grace) clearTimeout(tab.grace);
    tab.grace = undefined;
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    res.write('retry: 2000\n\n');
    const heartbeat = setInterval(() => res.write(': ping\n\n'), this.options.heartbeatMs);
    tab.stream = { res, heartbeat };
    tab.lastActive = Date.now();
    const onClose = () => {
      if (tab.stream?.res !== res) return;
      this.detach(tab);
      tab.grace = setTimeout(() => this.drop(tab), this.options.graceMs);
    };
    res.on('close', onClose);
    res.on('error', onClose);
    this.write(tab, 'status', this.status());
    for (const chunk of tab.backlog.splice(0)) res.write(chunk);
    // Jobs may have moved on while the tab was away.
    for (const jobId of tab.follows.keys()) void this.push(tab, jobId);
    return true;
  }

  /** Sends the job's updates to the tab until it ends. */
  follow(tabId: string, jobId: string): void {
    const tab = this.tab(tabId);
    if (!tab || tab.follows.has(jobId)) return;
    tab.lastActive = Date.now();
    const state: FollowState = { queued: true, ending: false };
    const following = followJob(
      this.queue,
      this.commands,
      jobId,
      (reply) => (state.ending ? undefined : this.send(tab, jobId, reply, false)),
      {
        minIntervalMs: this.options.progressIntervalMs,
        onFinal: async (reply) => {
          state.ending = true;
          await this.send(tab, jobId, reply, true);
          tab.follows.delete(jobId);
        },
      },
    );
    tab.follows.set(jobId, { following, state });
    // Without a stream yet (the page posts before its stream opens), wait as for a dropped one.
    if (!tab.stream && !tab.grace) tab.grace = setTimeout(() => this.drop(tab), this.options.graceMs);
  }

  /** Tells every tab the model's status. */
  broadcastStatus(): void {
    const status = this.status();
    for (const tab of this.tabs.values()) this.write(tab, 'status', status);
  }

  get openStreams(): number {
    let n = 0;
    for (const tab of this.tabs.values()) if (tab.stream) n++;
    return n;
  }

  get followedJobs(): number {
    let n = 0;
    for (const tab of this.tabs.values()) n += tab.follows.size;
    return n;
  }

  close(): void {
    this.closed = true;
    for (const off of this.offs) off();
    for (const tab of [...this.tabs.values()]) {
      const res = tab.stream?.res;
      this.drop(tab);
      res?.end();
    }
  }

  private tab(id: string): Tab | undefined {
    if (this.closed) return undefined;
    let tab = this.tabs.get(id);
    if (tab) return tab;
    if (this.tabs.size >= this.options.maxTabs && !this.evictIdle()) return undefined;
    tab = { id, follows: new Map(), backlog: [], lastActive: Date.now() };
    this.tabs.set(id, tab);
    return tab;
  }

  /** Drops the longest-idle tab without a stream; false when every tab is open. */
  private evictIdle(): boolean {
    let idle: Tab | undefined;
    for (const tab of this.tabs.values())
      if (!tab.stream && (!idle || tab.lastActive < idle.lastActive)) idle = tab;
    if (idle) this.drop(idle);
    return idle !== undefined;
  }

  private async send(tab: Tab, jobId: string, reply: Reply, final: boolean): Promise<void> {
    const follow = tab.follows.get(jobId)?.state;
    const preview = follow?.preview;
    if (
      preview &&
      reply.kind === 'progress' &&
      reply.progress.state === 'running' &&
      !reply.progress.preview
    ) {
      const image = Buffer.from(preview, 'base64');
      reply = {
        ...reply,
        progress: {
          ...reply.progress,
          preview: { data: image, filename: `preview-${jobId}.webp`, alt: 'preview', mime: 'image/webp' },
        },
      };
    }
    const wire = await toWire(reply, this.queue, jobId);
    if (follow) follow.queued = wire.kind === 'progress' && wire.state === 'queued';
    this.write(tab, 'job', { jobId, reply: wire, final } satisfies JobEvent);
  }

  /** The job as it stands now, unless its final reply is already on its way. */
  private async push(tab: Tab, jobId: string): Promise<void> {
    try {
      const reply = await this.commands.jobReply(jobId);
      const follow = tab.follows.get(jobId);
      if (follow && !follow.state.ending) await this.send(tab, jobId, reply, false);
    } catch (e) {
      this.log.warn(`playground: could not update job ${jobId}: ${(e as Error).message}`);
    }
  }

  private refreshQueued(changed: string): void {
    for (const tab of this.tabs.values()) {
      for (const [jobId, follow] of tab.follows) {
        if (jobId !== changed && follow.state.queued) void this.push(tab, jobId);
      }
    }
  }

  private write(tab: Tab, event: string, data: unknown): void {
    const chunk = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    if (tab.stream) {
      tab.stream.res.write(chunk);
      return;
    }
    tab.backlog.push(chunk);
    if (tab.backlog.length > MAX_BACKLOG) tab.backlog.shift();
  }

  private detach(tab: Tab): void {
    if (!tab.stream) return;
    clearInterval(tab.stream.heartbeat);
    tab.stream = undefined;
  }

  private drop(tab: Tab): void {
    this.detach(tab);
    if (tab.grace) clearTimeout(tab.grace);
    for (const { following } of tab.follows.values()) following.stop();
    tab.follows.clear();
    this.tabs.delete(tab.id);
  }
}
