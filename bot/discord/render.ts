// Reply models → Discord messages: a card becomes an embed, images become attachments that fit
// the interaction's upload limit, rows become action rows. Discord's limits on components and
// embeds are enforced here, so whatever a command returns, Discord accepts the message.

import {
  type APIActionRowComponent,
  type APIButtonComponentWithCustomId,
  type APIComponentInMessageActionRow,
  type APIEmbed,
  type APISelectMenuOption,
  type APIStringSelectComponent,
  ButtonStyle,
  ComponentType,
  MessageFlags,
} from 'discord.js';
import sharp from 'sharp';
import {
  describeProgress,
  type JobProgress,
  type MessageReply,
  type ProgressReply,
  REPLY_TONE_RGB,
  type Reply,
  type ReplyButton,
  type ReplyCard,
  type ReplyImage,
  type ReplyRow,
  type ReplyTone,
} from '../../commands/reply.ts';
import { encodeImage, MIN_ENCODE_BYTES } from '../render/index.ts';

/** Discord's own limits (https://discord.com/developers/docs/resources/message, …/components). */
export const DISCORD_LIMITS = Object.freeze({
  content: 2000,
  embedTitle: 256,
  embedDescription: 4096,
  embedFields: 25,
  fieldName: 256,
  fieldValue: 1024,
  footer: 2048,
  embedTotal: 6000,
  rows: 5,
  buttonsPerRow: 5,
  buttonLabel: 80,
  customId: 100,
  selectOptions: 25,
  optionLabel: 100,
  optionValue: 100,
  optionDescription: 100,
  placeholder: 150,
  attachments: 10,
  attachmentDescription: 1024,
  modalTitle: 45,
  label: 45,
  labelDescription: 100,
});

/** One file of a message, as discord.js uploads it (`files[n]` in the multipart body). */
export interface RenderedFile {
  attachment: Buffer;
  name: string;
  description?: string;
  contentType: string;
}

/** A message ready for discord.js (interaction replies, webhook edits) or a raw channel post. */
export interface RenderedMessage {
  content: string;
  embeds: APIEmbed[];
  components: APIActionRowComponent<APIComponentInMessageActionRow>[];
  files: RenderedFile[];
  ephemeral: boolean;
  /** what had to be dropped or cut to fit Discord, for the log */
  adjustments: string[];
}

export interface RenderOptions {
  /** per-file upload budget: the interaction's attachment_size_limit */
  maxAttachmentBytes: number;
}

export async function renderReply(reply: Reply, options: RenderOptions): Promise<RenderedMessage> {
  const adjustments: string[] = [];
  const message =
    reply.kind === 'progress'
      ? await renderProgress(reply, options, adjustments)
      : await renderMessage(reply, options, adjustments);
  return { ...message, adjustments };
}

/** The options discord.js takes for an interaction reply or a component update. */
export function replyOptions(message: RenderedMessage) {
  return {
    ...editOptions(message),
    ...(message.ephemeral ? { flags: MessageFlags.Ephemeral as const } : {}),
  };
}

/** The options discord.js takes for an edit of a message (flags cannot change after it is sent). */
export function editOptions(message: RenderedMessage) {
  return {
    content: message.content,
    embeds: message.embeds,
    components: message.components,
    files: message.files.map((f) => ({ attachment: f.attachment, name: f.name, description: f.description })),
    // A fresh list each time: an edit keeps only the attachments it names (discord.js appends to it).
    attachments: [],
    allowedMentions: { parse: [] },
  };
}

/** A raw POST /channels/{id}/messages body and its files, for when no interaction token is left. */
export function channelPost(message: RenderedMessage, mentionUserId?: string) {
  const mention = mentionUserId ? `<@${mentionUserId}> ` : '';
  return {
    body: {
      content: `${mention}${message.content}`.slice(0, DISCORD_LIMITS.content),
      embeds: message.embeds,
      components: message.components,
      attachments: message.files.map((f, i) => ({ id: i, filename: f.name, description: f.description })),
      allowed_mentions: { parse: [], users: mentionUserId ? [mentionUserId] : [] },
    },
    files: message.files.map((f) => ({ name: f.name, data: f.attachment, contentType: f.contentType })),
  };
}

async function renderMessage(
  reply: MessageReply,
  options: RenderOptions,
  adjustments: string[],
): Promise<Omit<RenderedMessage, 'adjustments'>> {
  const images = (reply.images ?? []).slice(0, DISCORD_LIMITS.attachments);
  if ((reply.images ?? []).length > images.length) adjustments.push('dropped images past 10 attachments');
  const files = await fitImages(images, options, adjustments);
  const renamed = new Map(images.map((img, i) => [img.filename, files[i]?.name]));
  const embeds = reply.card ? [cardEmbed(reply.card, renamed, adjustments)] : [];
  return {
    content: cut(reply.text ?? '', DISCORD_LIMITS.content, 'text', adjustments),
    embeds,
    components: renderRows(reply.rows ?? [], adjustments),
    files: files.filter((f): f is RenderedFile => f !== undefined),
    ephemeral: reply.ephemeral,
  };
}

const PROGRESS_TITLE: Record<JobProgress['state'], string> = {
  queued: 'Queued',
  running: 'Composing…',
  done: 'Done',
  failed: 'Failed',
  cancelled: 'Cancelled',
};

const PROGRESS_TONE: Record<JobProgress['state'], ReplyTone> = {
  queued: 'neutral',
  running: 'brand',
  done: 'success',
  failed: 'danger',
  cancelled: 'warning',
};

async function renderProgress(
  reply: ProgressReply,
  options: RenderOptions,
  adjustments: string[],
): Promise<Omit<RenderedMessage, 'adjustments'>> {
  const p = reply.progress;
  const preview = p.state === 'running' ? p.preview : null;
  const [file] = preview ? await fitImages([preview], options, adjustments) : [];
  const embed: APIEmbed = {
    title: PROGRESS_TITLE[p.state],
    description: describeProgress(p),
    color: REPLY_TONE_RGB[PROGRESS_TONE[p.state]],
    footer: { text: `job ${reply.jobId}` },
    ...(file ? { image: { url: `attachment://${file.name}` } } : {}),
  };
  return {
    content: '',
    embeds: [embed],
    components: renderRows(reply.rows ?? [], adjustments),
    files: file ? [file] : [],
    ephemeral: reply.ephemeral,
  };
}

function cardEmbed(
  card: ReplyCard,
  renamed: Map<string, string | undefined>,
  adjustments: string[],
): APIEmbed {
  const L = DISCORD_LIMITS;
  const embed: APIEmbed = {
    title: cut(card.title, L.embedTitle, 'card title', adjustments),
    color: REPLY_TONE_RGB[card.tone],
  };
  if (card.description)
    embed.description = cut(card.description, L.embedDescription, 'card text', adjustments);
  if (card.footer) embed.footer = { text: cut(card.footer, L.footer, 'footer', adjustments) };
  const image = card.image === undefined ? undefined : renamed.get(card.image);
  if (image) embed.image = { url: `attachment://${image}` };
  const fields = card.fields.slice(0, L.embedFields).map((f) => ({
    name: cut(f.name, L.fieldName, 'field name', adjustments) || '\u200b',
    value: cut(f.value, L.fieldValue, `field '${f.name}'`, adjustments) || '\u200b',
    inline: f.inline ?? false,
  }));
  if (card.fields.length > fields.length)
    adjustments.push(`dropped ${card.fields.length - fields.length} fields`);
  // The whole embed must stay under 6000 characters: drop fields from the end until it does.
  const size = () =>
    (embed.title?.length ?? 0) +
    (embed.description?.length ?? 0) +
    (embed.footer?.text.length ?? 0) +
    fields.reduce((n, f) => n + f.name.length + f.value.length, 0);
  while (fields.length > 0 && size() > L.embedTotal) {
    fields.pop();
    adjustments.push('dropped a field to fit 6000 characters');
  }
  if (size() > L.embedTotal && embed.description)
    embed.description = embed.description.slice(
      0,
      Math.max(0, embed.description.length - (size() - L.embedTotal)),
    );
  if (fields.length > 0) embed.fields = fields;
  return embed;
}

const BUTTON_STYLE: Record<ReplyButton['style'], APIButtonComponentWithCustomId['style']> = {
  primary: ButtonStyle.Primary,
  secondary: ButtonStyle.Secondary,
  danger: ButtonStyle.Danger,
};

/** Action rows: at most 5, 5 buttons each, one select per row with its paging buttons under it. */
export function renderRows(
  rows: readonly ReplyRow[],
  adjustments: string[] = [],
): APIActionRowComponent<APIComponentInMessageActionRow>[] {
  const L = DISCORD_LIMITS;
  const out: APIActionRowComponent<APIComponentInMessageActionRow>[] = [];
  const used = new Set<string>();
  const idFits = (id: string, what: string) => {
    if (id.length === 0 || id.length > L.customId || used.has(id)) {
      adjustments.push(`dropped ${what}: custom_id '${id.slice(0, 20)}…' is empty, over 100 or repeated`);
      return false;
    }
    used.add(id);
    return true;
  };
  const button = (b: ReplyButton): APIButtonComponentWithCustomId => ({
    type: ComponentType.Button,
    custom_id: b.id,
    label: cut(b.label, L.buttonLabel, 'button label', adjustments),
    style: BUTTON_STYLE[b.style],
    ...(b.disabled ? { disabled: true } : {}),
  });
  const pushButtons = (buttons: readonly ReplyButton[]) => {
    const kept = buttons.filter((b) => idFits(b.id, `button '${b.label}'`));
    for (let i = 0; i < kept.length; i += L.buttonsPerRow) {
      out.push({ type: ComponentType.ActionRow, components: kept.slice(i, i + L.buttonsPerRow).map(button) });
    }
  };
  for (const row of rows) {
    if (row.kind === 'buttons') {
      pushButtons(row.buttons);
      continue;
    }
    const s = row.select;
    if (!idFits(s.id, 'a select')) continue;
    const options: APISelectMenuOption[] = s.options
      .filter((o) => o.value.length > 0 && o.value.length <= L.optionValue)
      .slice(0, L.selectOptions)
      .map((o) => ({
        label: cut(o.label, L.optionLabel, 'option label', adjustments) || o.value,
        value: o.value,
        ...(o.description
          ? { description: cut(o.description, L.optionDescription, 'option', adjustments) }
          : {}),
        ...(o.selected ? { default: true } : {}),
      }));
    if (options.length < s.options.length)
      adjustments.push(`select '${s.id}' kept ${options.length} options`);
    if (options.length === 0) continue;
    const select: APIStringSelectComponent = {
      type: ComponentType.StringSelect,
      custom_id: s.id,
      placeholder: cut(s.placeholder, L.placeholder, 'placeholder', adjustments),
      options,
      min_values: 1,
      max_values: 1,
      ...(s.disabled ? { disabled: true } : {}),
    };
    out.push({ type: ComponentType.ActionRow, components: [select] });
    const paging = s.paging;
    if (paging && paging.pageCount > 1) {
      // Discord shows 25 options at most: the pages beyond are reached with buttons under the select.
      const pages: ReplyButton[] = [];
      if (paging.previousId !== null)
        pages.push({ id: paging.previousId, label: `◀ Page ${paging.page}`, style: 'secondary' });
      if (paging.nextId !== null)
        pages.push({ id: paging.nextId, label: `Page ${paging.page + 2} ▶`, style: 'secondary' });
      pushButtons(pages);
    }
  }
  if (out.length > L.rows) adjustments.push(`dropped ${out.length - L.rows} action rows past 5`);
  return out.slice(0, L.rows);
}

/** Each image as a file no larger than the budget: as it is when it fits, else re-encoded smaller. */
async function fitImages(
  images: readonly ReplyImage[],
  options: RenderOptions,
  adjustments: string[],
): Promise<(RenderedFile | undefined)[]> {
  const names = new Set<string>();
  const out: (RenderedFile | undefined)[] = [];
  for (const image of images) {
    const file = await fitImage(image, options.maxAttachmentBytes, adjustments);
    if (file && names.has(file.name)) file.name = `${out.length}-${file.name}`;
    if (file) names.add(file.name);
    out.push(file);
  }
  return out;
}

async function fitImage(
  image: ReplyImage,
  maxBytes: number,
  adjustments: string[],
): Promise<RenderedFile | undefined> {
  const description = image.alt.slice(0, DISCORD_LIMITS.attachmentDescription);
  const name = safeFilename(image.filename);
  if (image.data.byteLength <= maxBytes) {
    return { attachment: Buffer.from(image.data), name, description, contentType: image.mime };
  }
  if (maxBytes < MIN_ENCODE_BYTES) {
    adjustments.push(`dropped ${name}: an upload limit of ${maxBytes} bytes fits no picture`);
    return undefined;
  }
  // Over the limit: decode and walk the encoder's ladder (WebP, then JPEG at falling quality, then smaller).
  const { data, info } = await sharp(image.data).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const encoded = await encodeImage(
    new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    info.width,
    info.height,
    {
      maxBytes,
    },
  );
  const stem = name.replace(/\.[A-Za-z0-9]+$/, '');
  adjustments.push(`${name} re-encoded as ${encoded.format} to fit ${maxBytes} bytes`);
  return {
    attachment: encoded.bytes,
    name: `${stem}.${encoded.ext}`,
    description,
    contentType: encoded.mime,
  };
}

/** Discord refers to attachments by name in `attachment://`: keep names to plain characters. */
function safeFilename(name: string): string {
  const clean = name.replace(/[^A-Za-z0-9._-]+/g, '_').slice(-100);
  return clean.length > 0 ? clean : 'image.png';
}

function cut(text: string, max: number, what: string, adjustments: string[]): string {
  if (text.length <= max) return text;
  adjustments.push(`${what} cut to ${max} characters`);
  return `${text.slice(0, max - 1)}…`;
}
