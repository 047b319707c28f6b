// What sits beside a LoRA file: `<stem>.json` in the shapes civitai tools and the A1111 web
// UI write (name, trigger words, description, source, licence, base model, tags), and a
// preview picture `<stem>.preview.png` or `<stem>.png|.jpg|.jpeg|.webp`.

import type { ImageMime } from '../../commands/ports.ts';

export interface Sidecar {
  name?: string;
  triggers?: string[];
  description?: string;
  source?: string;
  licence?: string;
  baseModel?: string;
  tags?: string[];
}

const MAX_TRIGGERS = 10;
const MAX_TAGS = 30;
const MAX_TEXT = 4000;

/** The sidecar's fields, or why its text cannot be read (the LoRA itself stays usable). */
export function parseSidecar(text: string): { sidecar: Sidecar } | { problem: string } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { problem: 'is not valid JSON; fix or delete it' };
  }
  if (!isRecord(json)) return { problem: 'is not a JSON object; fix or delete it' };
  const model = isRecord(json.model) ? json.model : {};
  const sidecar: Sidecar = {};
  // civitai's model-version files name the version in `name` and the model in `model.name`.
  const name = oneLine(model.name) ?? oneLine(json.name) ?? oneLine(json.title);
  if (name) sidecar.name = name;
  const triggers = phrases(json.triggers ?? json.trainedWords ?? json.trigger ?? json['activation text']);
  if (triggers.length) sidecar.triggers = triggers.slice(0, MAX_TRIGGERS);
  const description =
    nonEmptyText(json.description) ?? nonEmptyText(model.description) ?? nonEmptyText(json.notes);
  if (description) sidecar.description = plainText(description).slice(0, MAX_TEXT);
  const source =
    oneLine(json.source) ??
    oneLine(json.url) ??
    oneLine(json.homepage) ??
    (isId(json.modelId) ? `https://civitai.com/models/${json.modelId}` : undefined);
  if (source) sidecar.source = source;
  const licence = oneLine(json.licence) ?? oneLine(json.license) ?? oneLine(model.license);
  if (licence) sidecar.licence = licence;
  const base = oneLine(json.baseModel) ?? oneLine(json.base_model) ?? oneLine(json['sd version']);
  if (base) sidecar.baseModel = base;
  const tags = phrases(json.tags ?? model.tags);
  if (tags.length) sidecar.tags = tags.slice(0, MAX_TAGS);
  return { sidecar };
}

/** A list of phrases from an array of strings or one comma-separated string. */
function phrases(value: unknown): string[] {
  const raw =
    typeof value === 'string'
      ? value.split(',')
      : Array.isArray(value)
        ? value.filter((v): v is string => typeof v === 'string')
        : [];
  const out: string[] = [];
  for (const phrase of raw) {
    const p = phrase.replace(/\s+/g, ' ').trim().slice(0, 100);
    if (p && !out.includes(p)) out.push(p);
  }
  return out;
}

function nonEmptyText(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() !== '' ? value : undefined;
}

function oneLine(value: unknown): string | undefined {
  const t = nonEmptyText(value)?.replace(/\s+/g, ' ').trim();
  return t ? t.slice(0, 200) : undefined;
}

function isId(value: unknown): value is number | string {
  return (
    (typeof value === 'number' && Number.isSafeInteger(value)) ||
    (typeof value === 'string' && /^\d+$/.test(value))
  );
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

/** civitai descriptions are HTML; chat wants plain lines. */
export function plainText(html: string): string {
  return html
    .replace(/<\s*(br|\/p|\/div|\/li|\/h\d)\s*\/?>/gi, '\n')
    .replace(/<[^>]*>/g, '')
    .replace(/&(#\d+|#x[0-9a-f]+|\w+);/gi, (whole, code: string) => {
      if (code[0] === '#') {
        const n =
          code[1] === 'x' || code[1] === 'X' ? Number.parseInt(code.slice(2), 16) : Number(code.slice(1));
        return Number.isInteger(n) && n > 0 && n <= 0x10ffff ? String.fromCodePoint(n) : whole;
      }
      return ENTITIES[code.toLowerCase()] ?? whole;
    })
    .replace(/[ \t]+/g, ' ')
    .replace(/ *\n[\s]*\n+/g, '\n\n')
    .trim();
}

/** Preview file names for a LoRA stem, most specific first. */
export function previewNames(stem: string): string[] {
  return [
    `${stem}.preview.png`,
    `${stem}.preview.jpg`,
    `${stem}.preview.jpeg`,
    `${stem}.preview.webp`,
    `${stem}.png`,
    `${stem}.jpg`,
    `${stem}.jpeg`,
    `${stem}.webp`,
  ];
}

/** The picture format the bytes really are, or undefined for anything we would not send. */
export function sniffImage(bytes: Uint8Array): ImageMime | undefined {
  const at = (i: number, ...values: number[]) => values.every((v, k) => bytes[i + k] === v);
  if (at(0, 0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return 'image/png';
  if (at(0, 0xff, 0xd8, 0xff)) return 'image/jpeg';
  if (at(0, 0x52, 0x49, 0x46, 0x46) && at(8, 0x57, 0x45, 0x42, 0x50)) return 'image/webp';
  if (at(0, 0x47, 0x49, 0x46, 0x38)) return 'image/gif';
  return undefined;
}

export const IMAGE_EXTENSION: Readonly<Record<ImageMime, string>> = {
  'image/png': 'png',
  'image/jpeg': 'jpg',
  'image/webp': 'webp',
  'image/gif': 'gif',
};

/** The bytes of a `data:image/…;base64,` URL (modelspec.thumbnail), or undefined. */
export function dataUrlBytes(url: string): Uint8Array | undefined {
  const m = /^data:image\/[a-z+.-]+;base64,([A-Za-z0-9+/=\s]+)$/i.exec(url);
  if (!m) return undefined;
  const bytes = Buffer.from(m[1], 'base64');
  return bytes.length > 0 ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length) : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
