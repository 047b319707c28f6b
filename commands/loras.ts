// /loras [query] [page]: the LoRA library a page at a time, optionally searched; /lora <name>:
// one LoRA's card with its triggers, base model, provenance, preview and a Try it button.

import { encodeLoraActionId } from './actions.ts';
import { quotedAlternatives } from './compose/closest.ts';
import type { LoraLibraryView, LoraView } from './ports.ts';
import {
  type MessageReply,
  pageOf,
  REPLY_LIMITS,
  type ReplyButton,
  type ReplyCardField,
  type ReplyImage,
  type ReplyRow,
  type ReplyTone,
  textReply,
  truncate,
  userErrorReply,
} from './reply.ts';

/** What the replies need of the library. */
export type LoraShelf = Pick<LoraLibraryView, 'list' | 'search'>;
export type LoraCardSource = Pick<LoraLibraryView, 'check' | 'preview' | 'closest'>;

/** Under Discord's default 10 MiB attachment limit, with room for the rest of the reply. */
export const LORA_PREVIEW_MAX_BYTES = 8 * 1024 * 1024;

// A search carried in a page button's id must fit it: 'loras:9999:' leaves 89 characters.
const MAX_QUERY_IN_ID = 64;
// Keeps a full page under Discord's 6000 characters for a whole embed.
const LIST_FIELD_NAME = 70;
const LIST_FIELD_VALUE = 140;

export interface LorasRequest {
  query?: string;
  /** 0-based */
  page?: number;
}

/** "penguin 2" → search "penguin", page index 1; a lone number is a page (/loras typed as text). */
export function readLorasText(text: string): Required<LorasRequest> {
  const words = text.trim().split(/\s+/).filter(Boolean);
  const last = words.at(-1);
  if (last !== undefined && /^[1-9]\d{0,3}$/.test(last))
    return { query: words.slice(0, -1).join(' '), page: Number(last) - 1 };
  return { query: words.join(' '), page: 0 };
}

/** One page (up to 25) of the library or of a search, with a select to open a card and page buttons. */
export function lorasReply(library: LoraShelf, request: LorasRequest = {}): MessageReply {
  const query = (request.query ?? '').replace(/\s+/g, ' ').trim().slice(0, MAX_QUERY_IN_ID).trim();
  const total = library.list().length;
  if (total === 0) {
    return textReply(
      "No LoRAs yet: the operator can put LoRA .safetensors files in the bot's LoRA folder, or an admin can use `/lora add`.",
      true,
    );
  }
  const found = query === '' ? library.list() : library.search(query);
  if (found.length === 0) {
    return userErrorReply(`no LoRA matches '${query}'`, `\`/loras\` without a search lists all ${total}.`);
  }
  const { items, page, pageCount } = pageOf(found, request.page ?? 0, REPLY_LIMITS.selectOptions);
  const pageId = (p: number) => encodeLoraActionId({ kind: 'loras', page: p, query });
  const count = `${found.length} LoRA${found.length === 1 ? '' : 's'}`;
  const rows: ReplyRow[] = [
    {
      kind: 'select',
      select: {
        id: encodeLoraActionId({ kind: 'lora-card' }),
        placeholder:
          pageCount > 1 ? `Show a LoRA's card (page ${page + 1}/${pageCount})` : "Show a LoRA's card",
        options: items.map((e) => ({
          label: truncate(titleOf(e), REPLY_LIMITS.optionLabel),
          value: e.name,
          description: truncate(
            e.usable ? `triggers: ${e.triggers.join(', ')}` : 'cannot be used: see its card',
            REPLY_LIMITS.optionDescription,
          ),
        })),
        paging: {
          page,
          pageCount,
          previousId: page > 0 ? pageId(page - 1) : null,
          nextId: page + 1 < pageCount ? pageId(page + 1) : null,
        },
      },
    },
  ];
  const anyUnusable = items.some((e) => !e.usable);
  return {
    kind: 'message',
    ephemeral: true,
    card: {
      title: query === '' ? 'LoRAs' : truncate(`LoRAs matching “${query}”`, REPLY_LIMITS.cardTitle),
      description:
        `${count}${pageCount > 1 ? `, page ${page + 1} of ${pageCount}` : ''}. ` +
        'Bind one in /compose with `subject:<name>`; `/lora <name>` shows its card.',
      fields: items.map((e) => ({
        name: truncate(`${e.usable ? '' : '⚠️ '}${titleOf(e)}`, LIST_FIELD_NAME),
        value: truncate(listLine(e), LIST_FIELD_VALUE),
      })),
      ...(anyUnusable ? { footer: '⚠️ marks a LoRA that cannot be used; its card says why.' } : {}),
      tone: 'brand',
    },
    rows,
  };
}

/** One LoRA's card; an unknown name gets an ephemeral error with the closest names. */
export async function loraCardReply(library: LoraCardSource, name: string): Promise<MessageReply> {
  const asked = name.trim().replace(/^<\s*|\s*>$/g, '');
  if (asked === '') return userErrorReply('give the name of a LoRA: `/lora <name>`', '`/loras` lists them.');
  // A LoRA still waiting for its background check is checked now, so the card is definite.
  const entry = await library.check(asked);
  if (!entry) return userErrorReply(unknownLoraMessage(asked, library.closest(asked)));

  // An unusable LoRA's card leads with why, and offers no way to use it.
  const fields: ReplyCardField[] =
    entry.check.state === 'unusable'
      ? [{ name: 'Why it cannot be used', value: entry.check.reason }]
      : [{ name: 'Use it', value: `\`subject:<${entry.name}>\` in /compose` }];
  fields.push(
    { name: 'Trigger words', value: describeTriggers(entry), inline: true },
    { name: 'Base model', value: describeBase(entry), inline: true },
    { name: 'Rank', value: describeRank(entry), inline: true },
    { name: 'Size', value: formatBytes(entry.sizeBytes), inline: true },
    { name: 'Source', value: describeSource(entry), inline: true },
    { name: 'Licence', value: entry.licence ?? 'not recorded', inline: true },
    {
      name: 'SHA-256',
      value: entry.sha256 ? `\`${entry.sha256.slice(0, 12)}\`` : 'not computed yet',
      inline: true,
    },
  );
  const training = describeTraining(entry.metadata);
  if (training) fields.push({ name: 'Training', value: training });
  if (entry.tags.length > 0) fields.push({ name: 'Tags', value: entry.tags.slice(0, 12).join(', ') });
  fields.push({ name: 'File', value: `\`${entry.file}\``, inline: true });

  const images: ReplyImage[] = [];
  const footer = [...entry.notes];
  const preview = await library.preview(entry.name, LORA_PREVIEW_MAX_BYTES);
  if (preview?.ok) {
    images.push({ ...preview.image, alt: `Preview picture of the LoRA ${entry.displayName}` });
  } else if (preview) footer.push(`No preview: ${preview.problem}.`);

  const buttons: ReplyButton[] = [
    {
      id: encodeLoraActionId({ kind: 'loras', page: 0, query: '' }),
      label: 'All LoRAs',
      style: 'secondary',
    },
  ];
  if (entry.usable) {
    buttons.unshift({
      id: encodeLoraActionId({ kind: 'lora-try', lora: entry.name }),
      label: 'Try it',
      style: 'primary',
    });
  }
  return {
    kind: 'message',
    ephemeral: false,
    card: {
      title: truncate(titleOf(entry), REPLY_LIMITS.cardTitle),
      ...(entry.description ? { description: truncate(entry.description, 700) } : {}),
      fields: fields.map((f) => ({ ...f, value: truncate(f.value, REPLY_LIMITS.fieldValue) })),
      ...(footer.length > 0 ? { footer: truncate(footer.join(' '), 1000) } : {}),
      tone: toneOf(entry),
      ...(images.length > 0 ? { image: images[0].filename } : {}),
    },
    ...(images.length > 0 ? { images } : {}),
    rows: [{ kind: 'buttons', buttons }],
  };
}

/** What a Try it press puts in the /compose box: the LoRA bound to a subject the user renames. */
export function tryItPrefill(loraName: string): string {
  return `subject:<${loraName}> `;
}

/** The name, with the display name where it says more than the name does. */
function titleOf(e: LoraView): string {
  const plain = e.displayName
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return plain === e.name && !/\s/.test(e.displayName) ? e.name : `${e.name} (${e.displayName})`;
}

function listLine(e: LoraView): string {
  if (e.check.state === 'unusable') return `cannot be used: ${e.check.reason}`;
  const parts = [
    `triggers: ${e.triggers.map((t) => `\`${t}\``).join(', ')}`,
    e.rank === undefined ? 'rank ?' : `rank ${e.rank}`,
    formatBytes(e.sizeBytes),
  ];
  if (e.check.state === 'pending') parts.push('being checked');
  if (e.check.state === 'unchecked') parts.push('not checked');
  return parts.join(' · ');
}

function describeTriggers(e: LoraView): string {
  const words = e.triggers.map((t) => `\`${t}\``).join(', ');
  switch (e.triggerSource) {
    case 'sidecar':
      return `${words} (from its sidecar file)`;
    case 'metadata':
      return e.metadata['modelspec.trigger_phrase']
        ? `${words} (declared in its metadata)`
        : `${words} (its most frequent training tag)`;
    case 'name':
      return `${words} (none recorded, so its name)`;
  }
}

function describeBase(e: LoraView): string {
  const claim = e.baseModelClaim ? `; its metadata says ${e.baseModelClaim}` : '';
  switch (e.check.state) {
    case 'ok':
      return e.check.unmatched === 0
        ? `SD 1.x ✓ (all ${e.check.layers} layers fit)`
        : `SD 1.x ✓ (${e.check.layers} layers fit, ${e.check.unmatched} modules match none and are ignored)`;
    case 'pending':
      return `being checked${claim}`;
    case 'unchecked':
      return `not checked: no model is configured yet${claim}`;
    case 'unusable':
      return `✗ cannot be used (why: above)${claim}`;
  }
}

function describeRank(e: LoraView): string {
  const rank = e.rank === undefined ? 'unknown' : String(e.rank);
  if (e.check.state !== 'ok') return rank;
  const kind = { kohya: 'kohya LoRA', peft: 'PEFT LoRA', locon: 'LoCon (kohya)' }[e.check.format];
  return `${rank}, ${kind}`;
}

function describeSource(e: LoraView): string {
  if (e.source && e.author) return `${e.source} (by ${e.author})`;
  if (e.source) return e.source;
  if (e.author) return `by ${e.author}`;
  return 'not recorded';
}

/** kohya's training record in one line: base, images, epochs, resolution, network. */
function describeTraining(meta: Readonly<Record<string, string>>): string | undefined {
  const parts: string[] = [];
  if (meta.ss_sd_model_name) parts.push(`on ${meta.ss_sd_model_name}`);
  if (/^\d+$/.test(meta.ss_num_train_images ?? '')) parts.push(`${meta.ss_num_train_images} images`);
  if (/^\d+$/.test(meta.ss_num_epochs ?? '')) parts.push(`${meta.ss_num_epochs} epochs`);
  const res = /^\(?\s*(\d+)\s*,\s*(\d+)\s*\)?$/.exec(meta.ss_resolution ?? '');
  if (res) parts.push(`${res[1]}×${res[2]}`);
  if (meta.ss_network_module) {
    const dim = meta.ss_network_dim ? ` dim ${meta.ss_network_dim}` : '';
    const alpha = meta.ss_network_alpha ? ` alpha ${Number(meta.ss_network_alpha)}` : '';
    parts.push(`${meta.ss_network_module}${dim}${alpha}`);
  }
  return parts.length > 0 ? parts.join(' · ') : undefined;
}

function toneOf(e: LoraView): ReplyTone {
  switch (e.check.state) {
    case 'ok':
      return 'brand';
    case 'unusable':
      return 'danger';
    case 'pending':
    case 'unchecked':
      return 'neutral';
  }
}

/** "unknown LoRA 'pengiun' — did you mean 'penguin-plush'?", given the names nearest the typed one. */
export function unknownLoraMessage(name: string, near: readonly string[]): string {
  return near.length > 0
    ? `unknown LoRA '${name}' — did you mean ${quotedAlternatives(near)}?`
    : `unknown LoRA '${name}': /loras lists the ones this bot has`;
}

/** "812 B", "546 KB", "144.1 MB", in 1024s as civitai and file managers show them. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = bytes / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v >= 100 || u === 0 ? Math.round(v) : Math.round(v * 10) / 10} ${units[u]}`;
}

/** The answer to an admin's /lora add that worked: the LoRA is now everyone's. */
export function loraAddedReply(
  entry: Pick<LoraView, 'name' | 'triggers' | 'sizeBytes'>,
  replaced: boolean,
): MessageReply {
  return {
    kind: 'message',
    ephemeral: true,
    card: {
      title: `${replaced ? 'Replaced' : 'Added'} ${entry.name}`,
      description: `Everyone can compose with it now: \`subject:<${entry.name}>\` in /compose.`,
      fields: [
        { name: 'Trigger words', value: entry.triggers.join(', ') || 'none', inline: true },
        { name: 'Size', value: formatBytes(entry.sizeBytes), inline: true },
      ],
      tone: 'success',
    },
    rows: [
      {
        kind: 'buttons',
        buttons: [
          {
            id: encodeLoraActionId({ kind: 'lora-try', lora: entry.name }),
            label: 'Try it',
            style: 'primary',
          },
        ],
      },
    ],
  };
}
