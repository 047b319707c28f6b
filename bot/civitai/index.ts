// `/lora add civitai:<id>` (or a civitai.com link, or an AIR) for every front end: the reference
// read, the import run, and the outcome as a reply model the adapters render.

import { loraAddedReply } from '../../commands/loras.ts';
import { type MessageReply, userErrorReply } from '../../commands/reply.ts';
import type { Config } from '../../config/index.ts';
import type { LoraLibrary } from '../library/index.ts';
import { CivitaiClient } from './client.ts';
import { importFromCivitai } from './import.ts';
import { looksLikeCivitai, readCivitaiReference } from './reference.ts';

export { CivitaiClient, CivitaiError } from './client.ts';
export { importFromCivitai, isSd1 } from './import.ts';
export { looksLikeCivitai, readCivitaiReference } from './reference.ts';

/** How an admin names a Civitai LoRA, for hints. */
export const CIVITAI_ADD_HINT =
  '`/lora add civitai:<model-version id>` (or a civitai.com model link, or its AIR)';

export function civitaiClient(config: Pick<Config, 'civitai'>): CivitaiClient {
  return new CivitaiClient({ apiUrl: config.civitai.apiUrl, token: config.civitai.token });
}

export interface CivitaiAddRequest {
  /** what the admin typed: an id, a link or an AIR */
  reference: string;
  name?: string;
  replace?: boolean;
}

/** Adds the LoRA a Civitai reference names; the reply says what happened, or what to do. */
export async function addFromCivitai(
  request: CivitaiAddRequest,
  civitai: CivitaiClient,
  library: Pick<LoraLibrary, 'add' | 'get'>,
  maxBytes: number,
): Promise<{ reply: MessageReply; added?: string }> {
  const reading = readCivitaiReference(request.reference);
  if (!reading.ok) return { reply: userErrorReply(reading.message) };
  const result = await importFromCivitai(reading.reference, civitai, library, {
    name: request.name,
    replace: request.replace,
    maxBytes,
  });
  if (!result.ok)
    return { reply: userErrorReply(result.message, 'Nothing was added. Fix that and run /lora add again.') };
  const reply = loraAddedReply(result.entry, result.replaced);
  const card = reply.card && {
    ...reply.card,
    fields: [...reply.card.fields, { name: 'From', value: result.source, inline: false }],
  };
  return { reply: card ? { ...reply, card } : reply, added: result.entry.name };
}

/**
 * The text after `/lora add` on platforms without options (Slack, the playground):
 * `<reference> [name] [--replace]`, e.g. `civitai:12345 barn-owl --replace`.
 */
export function readAddText(text: string): CivitaiAddRequest | undefined {
  const words = text.trim().split(/\s+/).filter(Boolean);
  const replace = words.some((w) => /^--?replace$/i.test(w));
  const [reference, ...rest] = words.filter((w) => !/^--?replace$/i.test(w));
  if (!reference || !looksLikeCivitai(reference)) return undefined;
  const name = rest.join(' ');
  return { reference, ...(name ? { name } : {}), replace };
}
