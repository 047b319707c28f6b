// Replies as the page receives them: the reply model with pictures turned into URLs (a
// job's own blobs by job id and blob name, small pictures such as previews inline), the
// progress line written out, and each button tagged with the kind of action it is.

import { decodeActionId, decodeLoraActionId } from '../../commands/actions.ts';
import { BLOB } from '../../commands/jobs.ts';
import {
  describeProgress,
  type JobProgress,
  type Reply,
  type ReplyButton,
  type ReplyCard,
  type ReplyImage,
  type ReplyRow,
  type ReplySelect,
} from '../../commands/reply.ts';
import type { ComposeQueue } from '../../commands/service.ts';

export type ImageKind = 'image' | 'masks' | 'maps' | 'preview' | 'picture';

export interface WireImage {
  url: string;
  alt: string;
  mime: string;
  kind: ImageKind;
  /** the reply model's filename, which a card's `image` names */
  filename: string;
}

/** A button with what it does, so the page can treat Show masks as a toggle. */
export type WireButton = ReplyButton & { action: string };
export type WireRow = { kind: 'buttons'; buttons: WireButton[] } | { kind: 'select'; select: ReplySelect };

interface WireCommon {
  rows: WireRow[];
  ephemeral: boolean;
  /** the job this reply shows; the page keeps one message per job */
  jobId?: string;
  /** increases with every reply serialised, so the page never shows an older state over a newer one */
  seq: number;
}

export type WireReply =
  | (WireCommon & { kind: 'message'; text?: string; card?: ReplyCard; images: WireImage[] })
  | (WireCommon & {
      kind: 'progress';
      jobId: string;
      state: JobProgress['state'];
      line: string;
      preview?: WireImage;
    });

const BLOB_NAMES = new Set<string>(Object.values(BLOB));
// `picture()` in commands/service.ts names a job's pictures `<blob>-<jobId>.<ext>`.
const JOB_PICTURE = /^([a-z]+)-([A-Za-z0-9_-]{1,64})\.(png|webp|jpg|gif)$/;

let counter = 0;

/** The URL the playground serves a job's blob at. */
export function blobUrl(jobId: string, name: string): string {
  return `/api/jobs/${encodeURIComponent(jobId)}/blob/${encodeURIComponent(name)}`;
}

export async function toWire(reply: Reply, queue: ComposeQueue, jobId?: string): Promise<WireReply> {
  const rows = (reply.rows ?? []).map(wireRow);
  if (reply.kind === 'progress') {
    const p = reply.progress;
    const preview = p.state === 'running' && p.preview ? inline(p.preview, 'preview') : undefined;
    return {
      kind: 'progress',
      jobId: reply.jobId,
      state: p.state,
      line: describeProgress(p),
      ...(preview ? { preview } : {}),
      rows,
      ephemeral: reply.ephemeral,
      seq: ++counter,
    };
  }
  const images = await Promise.all((reply.images ?? []).map((image) => wireImage(image, queue)));
  return {
    kind: 'message',
    ...(reply.text !== undefined ? { text: reply.text } : {}),
    ...(reply.card ? { card: reply.card } : {}),
    images,
    rows,
    ephemeral: reply.ephemeral,
    ...(jobId ? { jobId } : {}),
    // Numbered once the pictures are looked up, so the order of numbers is the order of sending.
    seq: ++counter,
  };
}

/** A job's picture by URL when the job holds exactly these bytes; anything else inline. */
async function wireImage(image: ReplyImage, queue: ComposeQueue): Promise<WireImage> {
  const m = JOB_PICTURE.exec(image.filename);
  if (m && BLOB_NAMES.has(m[1])) {
    const [, name, jobId] = m;
    const blob = (await queue.get(jobId))?.result?.blobs[name];
    if (blob && Buffer.from(blob).equals(Buffer.from(image.data))) {
      return {
        url: blobUrl(jobId, name),
        alt: image.alt,
        mime: image.mime,
        kind: name as ImageKind,
        filename: image.filename,
      };
    }
  }
  return inline(image, 'picture');
}

function inline(image: ReplyImage, kind: ImageKind): WireImage {
  return {
    url: `data:${image.mime};base64,${Buffer.from(image.data).toString('base64')}`,
    alt: image.alt,
    mime: image.mime,
    kind,
    filename: image.filename,
  };
}

function wireRow(row: ReplyRow): WireRow {
  if (row.kind === 'select') return row;
  return { kind: 'buttons', buttons: row.buttons.map((b) => ({ ...b, action: actionKind(b.id) })) };
}

function actionKind(id: string): string {
  return decodeActionId(id)?.kind ?? decodeLoraActionId(id)?.kind ?? 'other';
}
