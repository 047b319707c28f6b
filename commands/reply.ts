// The platform-neutral reply a command returns. Each adapter (Discord, Slack, playground)
// renders it and enforces its own platform's limits; REPLY_LIMITS holds the ones all share.

export type ReplyTone = 'brand' | 'success' | 'warning' | 'danger' | 'neutral';

/** 0xRRGGBB for platforms that colour a card's edge. */
export const REPLY_TONE_RGB: Readonly<Record<ReplyTone, number>> = Object.freeze({
  brand: 0x7c5cff,
  success: 0x2ea043,
  warning: 0xd29922,
  danger: 0xda3633,
  neutral: 0x6e7681,
});

export type ImageMime = 'image/png' | 'image/webp' | 'image/jpeg' | 'image/gif';

export interface ReplyImage {
  data: Uint8Array;
  filename: string;
  /** Read by screen readers and shown where images are off. */
  alt: string;
  mime: ImageMime;
}

export interface ReplyCardField {
  name: string;
  value: string;
  /** Side by side with its neighbours where the platform can. */
  inline?: boolean;
}

export interface ReplyCard {
  title: string;
  /** Markdown-ish: **bold**, _italic_, `code`, ``` blocks, - lists. */
  description?: string;
  fields: ReplyCardField[];
  footer?: string;
  tone: ReplyTone;
  /** Filename of one of the reply's images, shown inside the card. */
  image?: string;
}

export type ButtonStyle = 'primary' | 'secondary' | 'danger';

export interface ReplyButton {
  /** An action id (see actions.ts); comes back when the button is pressed. */
  id: string;
  label: string;
  style: ButtonStyle;
  disabled?: boolean;
}

export interface SelectOption {
  label: string;
  value: string;
  description?: string;
  selected?: boolean;
}

/** Where a long list of options continues; adapters render previous/next buttons. */
export interface SelectPaging {
  /** 0-based. */
  page: number;
  pageCount: number;
  previousId: string | null;
  nextId: string | null;
}

export interface ReplySelect {
  id: string;
  placeholder: string;
  options: SelectOption[];
  paging?: SelectPaging;
  disabled?: boolean;
}

/** A row holds buttons, or one select, as both Discord and Block Kit lay them out. */
export type ReplyRow = { kind: 'buttons'; buttons: ReplyButton[] } | { kind: 'select'; select: ReplySelect };

export interface MessageReply {
  kind: 'message';
  /** Markdown-ish, as in ReplyCard.description. */
  text?: string;
  card?: ReplyCard;
  images?: ReplyImage[];
  rows?: ReplyRow[];
  /** Seen only by the user who asked: errors, help, confirmations. */
  ephemeral: boolean;
}

export type JobProgress =
  | { state: 'queued'; position: number; etaSeconds: number | null }
  | {
      state: 'running';
      step: number;
      totalSteps: number;
      etaSeconds: number | null;
      preview: ReplyImage | null;
    }
  | { state: 'done'; elapsedSeconds: number }
  | { state: 'failed'; reason: string }
  | { state: 'cancelled'; by: string | null };

/** The status of a queued job; adapters edit one message in place as it changes. */
export interface ProgressReply {
  kind: 'progress';
  jobId: string;
  progress: JobProgress;
  rows?: ReplyRow[];
  ephemeral: boolean;
}

export type Reply = MessageReply | ProgressReply;

/** A field of a form: a choice among options, or a number in a range. */
export type FormField =
  | { kind: 'choice'; id: string; label: string; options: SelectOption[]; initial: string }
  | { kind: 'number'; id: string; label: string; hint?: string; min: number; max: number; initial: number };

/** A form the user fills in and submits: each adapter renders it as its platform's modal. */
export interface ReplyForm {
  /** comes back with the submission: what the form is about */
  id: string;
  title: string;
  /** one line above the fields */
  intro: string;
  submitLabel: string;
  fields: FormField[];
}

/** A submitted form's values, by field id, as typed or chosen. */
export type FormValues = Readonly<Record<string, string | undefined>>;

/** Why a submission is refused, beside the field to fix (platforms that cannot, show it as an error). */
export interface FormProblem {
  field: string;
  message: string;
}

/** `text` cut to `max` characters, an ellipsis marking the cut. */
export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

export function textReply(text: string, ephemeral = false): MessageReply {
  return { kind: 'message', text, ephemeral };
}

/** Something the user can fix; only they see it. */
export function userErrorReply(message: string, hint?: string): MessageReply {
  return {
    kind: 'message',
    text: hint === undefined ? `⚠️ ${message}` : `⚠️ ${message}\n${hint}`,
    ephemeral: true,
  };
}

export function buttonRow(...buttons: ReplyButton[]): ReplyRow {
  return { kind: 'buttons', buttons };
}

/** Shares (adding up to 1) as percentages with one decimal that add up to exactly 100.0% (largest remainder). */
export function percentagesSummingTo100(shares: readonly number[]): string[] {
  const tenths = shares.map((s) => s * 1000);
  const floors = tenths.map(Math.floor);
  let left = 1000 - floors.reduce((a, b) => a + b, 0);
  const order = tenths.map((t, i) => [t - floors[i]!, i] as const).sort((a, b) => b[0] - a[0]);
  for (const [, i] of order) {
    if (left <= 0) break;
    floors[i]! += 1;
    left--;
  }
  return floors.map((t, i) => (t === 0 && shares[i]! > 0 ? '<0.1%' : `${(t / 10).toFixed(1)}%`));
}

/** "45 s", "2 min 5 s", "1 h 3 min". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return s % 60 === 0 ? `${Math.floor(s / 60)} min` : `${Math.floor(s / 60)} min ${s % 60} s`;
  const minutes = Math.floor((s % 3600) / 60);
  return minutes === 0 ? `${Math.floor(s / 3600)} h` : `${Math.floor(s / 3600)} h ${minutes} min`;
}

/** "▰▰▰▱▱▱▱▱▱▱" for text-only renderers. */
export function progressBar(done: number, total: number, width = 10): string {
  const filled = total <= 0 ? 0 : Math.min(width, Math.max(0, Math.round((done / total) * width)));
  return '▰'.repeat(filled) + '▱'.repeat(width - filled);
}

function ordinal(n: number): string {
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? 'th' : (['th', 'st', 'nd', 'rd'][n % 10] ?? 'th');
  return `${n}${suffix}`;
}

/** One line of status text, the same on every platform. */
export function describeProgress(progress: JobProgress): string {
  switch (progress.state) {
    case 'queued': {
      const place = progress.position <= 1 ? 'next in line' : `${ordinal(progress.position)} in line`;
      return progress.etaSeconds === null
        ? `Queued: ${place}`
        : `Queued: ${place}, starts in about ${formatDuration(progress.etaSeconds)}`;
    }
    case 'running': {
      const bar = progressBar(progress.step, progress.totalSteps);
      const line = `Step ${progress.step}/${progress.totalSteps} ${bar}`;
      return progress.etaSeconds === null
        ? line
        : `${line} about ${formatDuration(progress.etaSeconds)} left`;
    }
    case 'done':
      return `Done in ${formatDuration(progress.elapsedSeconds)}`;
    case 'failed':
      return `Failed: ${progress.reason}`;
    case 'cancelled':
      return progress.by === null ? 'Cancelled' : `Cancelled by ${progress.by}`;
  }
}

/** Limits that hold on every platform we render to (the smaller of Discord's and Slack's). */
export const REPLY_LIMITS = Object.freeze({
  idLength: 100,
  rows: 5,
  buttonsPerRow: 5,
  buttonLabel: 75,
  selectOptions: 25,
  optionLabel: 75,
  optionValue: 100,
  optionDescription: 75,
  placeholder: 150,
  cardFields: 25,
  cardTitle: 256,
  fieldName: 256,
  fieldValue: 1024,
  text: 2000,
});

/** Page `page` (0-based, clamped) of `options`, with how many pages there are. */
export function pageOf<T>(
  options: readonly T[],
  page: number,
  pageSize: number = REPLY_LIMITS.selectOptions,
): { items: T[]; page: number; pageCount: number } {
  const pageCount = Math.max(1, Math.ceil(options.length / pageSize));
  const at = Math.min(Math.max(0, Math.floor(page)), pageCount - 1);
  return { items: options.slice(at * pageSize, (at + 1) * pageSize), page: at, pageCount };
}

/** Every way `reply` breaks REPLY_LIMITS or repeats an id; empty when it renders everywhere. */
export function checkReply(reply: Reply): string[] {
  const problems: string[] = [];
  const L = REPLY_LIMITS;
  const ids = new Set<string>();
  const checkId = (id: string, what: string) => {
    if (id.length === 0 || id.length > L.idLength)
      problems.push(`${what} id '${id}' must have 1–${L.idLength} characters`);
    if (ids.has(id)) problems.push(`${what} id '${id}' is used twice`);
    ids.add(id);
  };
  const tooLong = (text: string, max: number, what: string) => {
    if (text.length > max) problems.push(`${what} is ${text.length} characters, over ${max}`);
  };
  const rows = reply.rows ?? [];
  if (rows.length > L.rows) problems.push(`${rows.length} rows, over ${L.rows}`);
  for (const row of rows) {
    if (row.kind === 'buttons') {
      if (row.buttons.length === 0 || row.buttons.length > L.buttonsPerRow) {
        problems.push(`a row has ${row.buttons.length} buttons: 1–${L.buttonsPerRow} fit`);
      }
      for (const b of row.buttons) {
        checkId(b.id, 'button');
        tooLong(b.label, L.buttonLabel, `button label '${b.label}'`);
      }
      continue;
    }
    const s = row.select;
    checkId(s.id, 'select');
    tooLong(s.placeholder, L.placeholder, 'select placeholder');
    if (s.options.length === 0 || s.options.length > L.selectOptions) {
      problems.push(`select '${s.id}' has ${s.options.length} options: 1–${L.selectOptions} fit`);
    }
    for (const o of s.options) {
      tooLong(o.label, L.optionLabel, `option label '${o.label}'`);
      tooLong(o.value, L.optionValue, `option value '${o.value}'`);
      if (o.description !== undefined) tooLong(o.description, L.optionDescription, 'option description');
    }
    if (s.paging !== undefined) {
      if (s.paging.previousId !== null) checkId(s.paging.previousId, 'previous-page');
      if (s.paging.nextId !== null) checkId(s.paging.nextId, 'next-page');
    }
  }
  if (reply.kind === 'message') {
    if (reply.text !== undefined) tooLong(reply.text, L.text, 'text');
    const card = reply.card;
    if (card !== undefined) {
      tooLong(card.title, L.cardTitle, 'card title');
      if (card.fields.length > L.cardFields)
        problems.push(`${card.fields.length} card fields, over ${L.cardFields}`);
      for (const f of card.fields) {
        tooLong(f.name, L.fieldName, `field name '${f.name}'`);
        tooLong(f.value, L.fieldValue, `field '${f.name}'`);
      }
      if (card.image !== undefined && !(reply.images ?? []).some((i) => i.filename === card.image)) {
        problems.push(`card image '${card.image}' is not one of the reply's images`);
      }
    }
  }
  return problems;
}
