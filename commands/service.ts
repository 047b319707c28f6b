// The bot's commands, platform-neutral: each takes what a user did and who they are, and
// returns a reply model; adapters (Discord, Slack, the playground) render replies and
// call these on every slash command, button and select.

import {
  type ComposeAction,
  composeResultRow,
  decodeActionId,
  decodeLoraActionId,
  progressReply,
} from './actions.ts';
import { withComparison } from './compare.ts';
import {
  type ComposeRequest,
  type ComposeSettings,
  type ComposeTweak,
  composeErrorReply,
  compositionProblem,
  formatCompose,
  helpReply,
  type LoraRename,
  parseCompose,
  resolveLoras,
  tweakChoices,
  tweakFromChoice,
  tweakLoraRow,
  tweakRequest,
  tweakSlotRow,
  withSeed,
} from './compose/index.ts';
import {
  BLOB,
  type ComposeJobData,
  type ComposeJobProgress,
  type ComposeJobValue,
  type JobOrigin,
} from './jobs.ts';
import { loraCardReply, lorasReply, tryItPrefill } from './loras.ts';
import type { ComparisonDrawer, JobQueue, JobRecord, LoraLibraryView, RecipeReader } from './ports.ts';
import { remixReply } from './remix.ts';
import {
  describeProgress,
  formatDuration,
  type ImageMime,
  type JobProgress,
  type MessageReply,
  percentagesSummingTo100,
  REPLY_LIMITS,
  type Reply,
  type ReplyImage,
  textReply,
  truncate,
  userErrorReply,
} from './reply.ts';

export type ComposeQueue = JobQueue<ComposeJobData, ComposeJobValue, ComposeJobProgress>;
export type ComposeRecord = JobRecord<ComposeJobData, ComposeJobValue, ComposeJobProgress>;

/** Who did something, where. */
export interface ChatContext extends JobOrigin {
  /** may cancel anyone's job and manage the library */
  isAdmin: boolean;
}

export interface ModelStatus {
  ready: boolean;
  /** what to do when it is not */
  message?: string;
}

/** What the engine would say about a request, asked before it is queued. */
export type Preflight = { ok: true; notes: string[] } | { ok: false; message: string };

export interface CommandServices {
  queue: ComposeQueue;
  library: LoraLibraryView;
  /** reads the /compose command a picture from the bot carries */
  readRecipe: RecipeReader;
  /** draws "Compare with merge"'s side-by-side sheet */
  drawComparison: ComparisonDrawer;
  settings: ComposeSettings;
  model: () => ModelStatus;
  /** the engine's checks with the model's tokenizer; absent where this process has no model */
  preflight?: (request: ComposeRequest) => Preflight;
  random?: () => number;
}

/** A reply, and the job it started or is about (adapters follow that job's progress). */
export interface CommandOutcome {
  reply: Reply;
  jobId?: string;
  /** replace the message the action came from, rather than posting a new one */
  replace?: boolean;
  /** text to put in the user's compose box (a "Try it" prefill) */
  prefill?: string;
}

const PREVIEW_MIME: ImageMime = 'image/webp';

const ADD_FROM_CIVITAI =
  'Not in the library yet? If it is on Civitai, add it with `/lora add civitai:<id>` (its model-version id; a civitai.com model link or an AIR work too).';

export class ComposeCommands {
  private readonly recent = new Map<string, string[]>();

  constructor(private readonly services: CommandServices) {}

  /** The limits and defaults requests are read with (adapters' hints show them). */
  get settings(): ComposeSettings {
    return this.services.settings;
  }

  help(): Reply {
    return helpReply(this.services.settings);
  }

  /**
   * /compose <text>. `confirmAdmin` asks the platform when `ctx.isAdmin` was not worked out up
   * front (Slack asks users.info), only when the answer changes the reply.
   */
  async compose(
    text: string,
    ctx: ChatContext,
    options: { masks?: boolean; confirmAdmin?: () => Promise<boolean> } = {},
  ): Promise<CommandOutcome> {
    const model = this.services.model();
    if (!model.ready) return { reply: userErrorReply(model.message ?? 'no model is loaded yet') };
    const parsed = parseCompose(text, this.services.settings);
    if (!parsed.ok) return { reply: composeErrorReply(text, parsed.error) };
    const resolved = resolveLoras(parsed.request, this.services.library, parsed.source);
    if (!resolved.ok) {
      const reply = composeErrorReply(text, resolved.error);
      // Only admins can act on "add it": everyone else would be told of a command they cannot run.
      const admin =
        ctx.isAdmin || (resolved.error.code === 'unknown-lora' && (await options.confirmAdmin?.()));
      if (resolved.error.code === 'unknown-lora' && admin) reply.text += `\n${ADD_FROM_CIVITAI}`;
      return { reply };
    }
    const request = resolved.request;
    const nothing = compositionProblem(request, resolved.source);
    if (nothing) return { reply: composeErrorReply(text, nothing) };
    return this.submit(request, text, ctx, options.masks ?? request.masks, undefined, resolved.renamed);
  }

  /** A button or select: `value` is the chosen option of a select. */
  async action(id: string, ctx: ChatContext, value?: string): Promise<CommandOutcome> {
    const lora = decodeLoraActionId(id);
    if (lora) {
      if (lora.kind === 'loras')
        return {
          reply: lorasReply(this.services.library, { query: lora.query, page: lora.page }),
          replace: true,
        };
      if (lora.kind === 'lora-card')
        return { reply: await loraCardReply(this.services.library, value ?? '') };
      return {
        reply: textReply(`Compose with it: \`/compose ${tryItPrefill(lora.lora)}\``, true),
        prefill: tryItPrefill(lora.lora),
      };
    }
    const action = decodeActionId(id);
    if (!action)
      return {
        reply: userErrorReply('That button is from an older version of the bot; run the command again.'),
      };
    const job = await this.services.queue.get(action.jobId);
    if (!job) {
      return {
        reply: userErrorReply(
          'That job has expired and is no longer stored.',
          'Run /compose again to make a new one.',
        ),
      };
    }
    return this.onJobAction(action, job, ctx, value);
  }

  /** A picture the user gave back: the /compose command it carries, to edit (nothing in it is run). */
  remix(picture: Uint8Array): CommandOutcome {
    return remixReply(picture, this.services, this.services.settings);
  }

  /** /loras [query] [page] */
  loras(query = '', page = 0): Reply {
    return lorasReply(this.services.library, { query, page });
  }

  /** /lora <name>; an admin asking for one the library lacks is told how to add it. */
  async lora(name: string, options: { confirmAdmin?: () => Promise<boolean> } = {}): Promise<Reply> {
    const reply = await loraCardReply(this.services.library, name);
    const unknown = name.trim() !== '' && !this.services.library.get(name.trim().replace(/^<\s*|\s*>$/g, ''));
    if (unknown && reply.kind === 'message' && (await options.confirmAdmin?.()))
      return { ...reply, text: `${reply.text ?? ''}\n${ADD_FROM_CIVITAI}` };
    return reply;
  }

  /** /queue: the user's recent jobs and where they stand. */
  async queueStatus(ctx: ChatContext): Promise<Reply> {
    const ids = this.recent.get(ctx.userId) ?? [];
    const lines: string[] = [];
    for (const id of ids.slice(-5).reverse()) {
      const job = await this.services.queue.get(id);
      if (!job) continue;
      lines.push(
        `\`${id}\` ${truncate(job.data.text, 60)} — ${describeProgress(await this.progressOf(job))}`,
      );
    }
    return textReply(
      lines.length ? `Your recent jobs:\n${lines.join('\n')}` : 'You have no recent jobs. Try /compose.',
      true,
    );
  }

  /** The reply that shows a job as it stands now: progress while live, the image when done. */
  async jobReply(jobId: string): Promise<Reply> {
    const job = await this.services.queue.get(jobId);
    if (!job) return userErrorReply('That job has expired and is no longer stored.');
    if (job.state === 'completed') {
      const reply = this.resultReply(job);
      const parent = job.data.parent;
      if (parent?.action !== 'merge') return reply;
      const compared = await this.services.queue.get(parent.jobId);
      return withComparison(reply, job, compared, this.services.drawComparison);
    }
    return progressReply(jobId, await this.progressOf(job));
  }

  /** The finished image with its buttons (and the masks when the job asked for them). */
  resultReply(job: ComposeRecord, extra: { masks?: boolean } = {}): MessageReply {
    const value = job.result?.value;
    const blobs = job.result?.blobs ?? {};
    if (!value || !blobs[BLOB.image]) return userErrorReply('The job finished without an image.');
    const images: ReplyImage[] = [
      picture(value, blobs, BLOB.image, job.id, `${job.data.request.prompt} (seed ${value.seed})`),
    ];
    const withMasks = (extra.masks ?? job.data.masks) && blobs[BLOB.masks];
    if (withMasks)
      images.push(picture(value, blobs, BLOB.masks, job.id, 'which LoRA owns which part of the image'));
    const r = job.data.request;
    const fields = [
      { name: 'Seed', value: String(value.seed), inline: true },
      { name: 'Steps', value: `${r.steps} · ${r.sampler} · CFG ${r.cfg}`, inline: true },
      // The size the worker used: a request may have left it to the model.
      { name: 'Size', value: `${value.width}×${value.height}`, inline: true },
      { name: 'Time', value: formatDuration(value.elapsedMs / 1000), inline: true },
    ];
    if (r.bindings.length || r.style) {
      // A name that matched only once folded says what was typed, so nobody wonders which LoRA ran.
      const typed = (lora: string) => {
        const as = job.data.renamed?.find((n) => n.lora === lora)?.typed;
        return as === undefined ? '' : ` (you typed '${as}')`;
      };
      const loras = [
        ...r.bindings.map(
          (b) => `${b.subject} → ${b.lora}${b.weight === 1 ? '' : ` @${b.weight}`}${typed(b.lora)}`,
        ),
      ];
      if (r.style)
        loras.push(
          `style → ${r.style.lora}${r.style.weight === 1 ? '' : ` @${r.style.weight}`}${typed(r.style.lora)}`,
        );
      fields.push({ name: 'LoRAs', value: loras.join('\n'), inline: false });
    }
    if (job.data.notes?.length)
      fields.push({
        name: 'Note',
        value: truncate(job.data.notes.join('\n'), REPLY_LIMITS.fieldValue),
        inline: false,
      });
    if (value.maskShares && withMasks) {
      fields.push({
        name: 'Masks',
        // The legend's numbers: shares of the picture that add up to 100%.
        value: percentagesSummingTo100(value.maskShares.map((m) => m.share))
          .map((percent, i) => `${value.maskShares![i]!.name}: ${percent}`)
          .join(' · '),
        inline: false,
      });
    }
    return {
      kind: 'message',
      ephemeral: false,
      card: {
        title: truncate(r.prompt, 200),
        description: `\`/compose ${truncate(job.data.text, 300)}\``,
        fields,
        footer: `${value.method === 'clora' ? 'CLoRA' : value.method} · job ${job.id}`,
        tone: 'success',
        image: images[0].filename,
      },
      images,
      rows: [composeResultRow(job.id, { masks: Boolean(withMasks), merge: r.method === 'merge' })],
    };
  }

  /** The JobProgress of a record, with the latest preview. */
  async progressOf(job: ComposeRecord): Promise<JobProgress> {
    switch (job.state) {
      case 'queued': {
        const at = await this.services.queue.position(job.id);
        return {
          state: 'queued',
          position: at?.position ?? 1,
          etaSeconds: at?.etaMs === undefined ? null : at.etaMs / 1000,
        };
      }
      case 'running': {
        const p = job.progress;
        const preview: ReplyImage | null = p?.preview
          ? {
              data: Buffer.from(p.preview, 'base64'),
              filename: `preview-${job.id}.webp`,
              alt: 'preview',
              mime: PREVIEW_MIME,
            }
          : null;
        return {
          state: 'running',
          step: p?.step ?? 0,
          totalSteps: p?.steps ?? job.data.request.steps,
          etaSeconds: p?.etaMs === undefined ? null : p.etaMs / 1000,
          preview,
        };
      }
      case 'completed':
        return { state: 'done', elapsedSeconds: (job.result?.value.elapsedMs ?? 0) / 1000 };
      case 'failed':
        return {
          state: 'failed',
          reason: job.error?.kind === 'user' ? job.error.message : 'the engine hit an error; try again',
        };
      case 'cancelled':
        return { state: 'cancelled', by: null };
    }
  }

  private async onJobAction(
    action: ComposeAction,
    job: ComposeRecord,
    ctx: ChatContext,
    value?: string,
  ): Promise<CommandOutcome> {
    const request = job.data.request;
    switch (action.kind) {
      case 'cancel': {
        if (job.owner.userId !== ctx.userId && !ctx.isAdmin) {
          return { reply: userErrorReply('Only the person who started a job (or an admin) can cancel it.') };
        }
        const done = await this.services.queue.cancel(job.id);
        return done
          ? {
              reply: progressReply(job.id, { state: 'cancelled', by: ctx.userName }),
              jobId: job.id,
              replace: true,
            }
          : { reply: userErrorReply('That job has already finished.') };
      }
      case 'masks': {
        if (job.state !== 'completed')
          return { reply: userErrorReply('The masks appear when the image is done.') };
        const blobs = job.result?.blobs ?? {};
        const images = [BLOB.masks, BLOB.maps]
          .filter((b) => blobs[b])
          .map((b) =>
            picture(
              job.result!.value,
              blobs,
              b,
              job.id,
              b === BLOB.masks ? 'LoRA masks' : 'attention maps per token',
            ),
          );
        if (images.length === 0)
          return { reply: userErrorReply('This job has no masks: it did not compose several LoRAs.') };
        return {
          reply: {
            kind: 'message',
            text: 'Which LoRA owns which part of the image, and where each token looked:',
            images,
            ephemeral: false,
          },
        };
      }
      case 'rerun':
        return this.submit(request, job.data.text, ctx, job.data.masks, { jobId: job.id, action: 'rerun' });
      case 'seed': {
        const fresh = withSeed({ ...request, seed: null }, this.services.random);
        return this.submit(fresh, formatCompose(fresh, this.services.settings), ctx, job.data.masks, {
          jobId: job.id,
          action: 'seed',
        });
      }
      case 'merge': {
        const merged: ComposeRequest = { ...request, method: 'merge' };
        return this.submit(merged, formatCompose(merged, this.services.settings), ctx, false, {
          jobId: job.id,
          action: 'merge',
        });
      }
      case 'tweak': {
        if (action.slot === null) {
          if (value === undefined)
            return {
              reply: {
                kind: 'message',
                text: 'Change one LoRA, keep the seed:',
                rows: [tweakSlotRow(job.id, request)],
                ephemeral: true,
              },
            };
          const slot = value === 'style' ? 'style' : Number(value);
          if (slot !== 'style' && !(Number.isInteger(slot) && request.bindings[slot])) {
            return { reply: userErrorReply('That subject is no longer part of the job.') };
          }
          return { reply: this.loraPicker(job, slot, 0), replace: true };
        }
        if (value === undefined)
          return { reply: this.loraPicker(job, action.slot, action.page), replace: true };
        const tweak = tweakFromChoice(request, action.slot, value);
        if (!tweak) return { reply: userErrorReply('That subject is no longer part of the job.') };
        return this.tweak(job, tweak, ctx);
      }
    }
  }

  /** Reruns a finished job with one change (another LoRA, a weight, the style), same seed. */
  async tweak(job: ComposeRecord, tweak: ComposeTweak, ctx: ChatContext): Promise<CommandOutcome> {
    const result = tweakRequest(job.data.request, tweak, this.services.settings);
    if (!result.ok) return { reply: userErrorReply(result.error.message, result.error.suggestion) };
    const resolved = resolveLoras(result.request, this.services.library);
    if (!resolved.ok) return { reply: userErrorReply(resolved.error.message, resolved.error.suggestion) };
    const next = resolved.request;
    const nothing = compositionProblem(next, resolved.source);
    if (nothing) return { reply: userErrorReply(nothing.message) };
    return this.submit(next, formatCompose(next, this.services.settings), ctx, job.data.masks, {
      jobId: job.id,
      action: 'tweak',
    });
  }

  private loraPicker(job: ComposeRecord, slot: number | 'style', page: number): Reply {
    const names = this.services.library.names().filter((n) => this.services.library.get(n)?.usable);
    if (tweakChoices(slot, job.data.request, names).length === 0) {
      return userErrorReply(
        'every LoRA the bot has is already in this picture, and each LoRA draws one subject',
        'Add LoRAs to the library, or change another subject.',
      );
    }
    return {
      kind: 'message',
      text: 'Pick the new LoRA (same seed, everything else kept):',
      rows: [tweakLoraRow(job.id, slot, job.data.request, names, page)],
      ephemeral: true,
    };
  }

  private async submit(
    request: ComposeRequest,
    text: string,
    ctx: ChatContext,
    masks: boolean,
    parent?: ComposeJobData['parent'],
    renamed?: LoraRename[],
  ): Promise<CommandOutcome> {
    const model = this.services.model();
    if (!model.ready) return { reply: userErrorReply(model.message ?? 'no model is loaded yet') };
    const names = [...request.bindings.map((b) => b.lora), ...(request.style ? [request.style.lora] : [])];
    const hashes: { [name: string]: string } = {};
    for (const name of names) {
      const entry = this.services.library.get(name);
      if (!entry)
        return {
          reply: userErrorReply(
            `the LoRA '${name}' is no longer in the library`,
            'Pick another with /loras.',
          ),
        };
      if (!entry.usable) {
        const reason =
          entry.check.state === 'unusable' && entry.check.reason ? `: ${entry.check.reason}` : '';
        return {
          reply: userErrorReply(
            `the LoRA '${name}' cannot be used${reason}`,
            `/lora ${name} shows its card.`,
          ),
        };
      }
      if (entry.sha256) hashes[name] = entry.sha256;
    }
    // Whatever the engine would refuse is answered now, not after "Queued".
    const preflight = this.services.preflight?.(request) ?? { ok: true, notes: [] };
    if (!preflight.ok) return { reply: userErrorReply(preflight.message) };
    const seeded = withSeed(request, this.services.random);
    const { isAdmin: _admin, ...origin } = ctx;
    const data: ComposeJobData = {
      request: seeded,
      text,
      masks,
      origin,
      loraHashes: hashes,
      ...(parent ? { parent } : {}),
      ...(renamed?.length ? { renamed } : {}),
      ...(preflight.notes.length ? { notes: preflight.notes } : {}),
    };
    const outcome = await this.services.queue.enqueue(data, { userId: ctx.userId, scope: ctx.scope });
    if (!outcome.ok) return { reply: userErrorReply(outcome.message) };
    const list = this.recent.get(ctx.userId) ?? [];
    list.push(outcome.id);
    this.recent.set(ctx.userId, list.slice(-20));
    const job = await this.services.queue.get(outcome.id);
    const progress = job
      ? await this.progressOf(job)
      : ({ state: 'queued', position: 1, etaSeconds: null } as const);
    return { reply: progressReply(outcome.id, progress), jobId: outcome.id };
  }
}

function picture(
  value: ComposeJobValue,
  blobs: Record<string, Uint8Array>,
  name: string,
  jobId: string,
  alt: string,
): ReplyImage {
  const mime = (value.pictures[name] ?? 'image/png') as ImageMime;
  const ext = mime === 'image/webp' ? 'webp' : mime === 'image/jpeg' ? 'jpg' : 'png';
  return { data: blobs[name], filename: `${name}-${jobId}.${ext}`, alt: truncate(alt, 200), mime };
}
