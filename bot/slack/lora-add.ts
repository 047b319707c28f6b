// /lora add: a workspace admin uploads a LoRA through a modal (a file input), and the bot
// downloads it from Slack with its token, size-capped, and hands it to the library, which
// takes only safetensors and checks it against the model.

import type { types, ViewOutput } from '@slack/bolt';
import { formatBytes } from '../../commands/loras.ts';
import { type MessageReply, userErrorReply } from '../../commands/reply.ts';
import { downloadCapped } from '../library/download.ts';

export const LORA_ADD_VIEW = 'lora-add';
const FILE = 'file';
const NAME = 'name';
const REPLACE = 'replace';
export const LORA_ADD_FIELDS = { file: FILE, name: NAME, replace: REPLACE } as const;

const PICKLED = /\.(ckpt|pt|pth|bin|pkl|pickle)$/i;

export function adminOnlyReply(): MessageReply {
  return userErrorReply(
    'Only workspace admins and owners can add LoRAs.',
    'Ask one of them to run `/lora add`, or the operator to put the file in the LoRA folder.',
  );
}

export function loraAddView(channel: string, maxBytes: number): types.ModalView {
  return {
    type: 'modal',
    callback_id: LORA_ADD_VIEW,
    private_metadata: JSON.stringify({ channel }),
    title: { type: 'plain_text', text: 'Add a LoRA' },
    submit: { type: 'plain_text', text: 'Add' },
    close: { type: 'plain_text', text: 'Cancel' },
    blocks: [
      {
        type: 'section',
        text: {
          type: 'mrkdwn',
          text: `An SD 1.5 LoRA as a \`.safetensors\` file, up to ${formatBytes(maxBytes)}. Everyone in the workspace can compose with it once it is added.`,
        },
      },
      {
        type: 'input',
        block_id: FILE,
        label: { type: 'plain_text', text: 'LoRA file' },
        element: { type: 'file_input', action_id: FILE, filetypes: ['safetensors'], max_files: 1 },
      },
      {
        type: 'input',
        block_id: NAME,
        optional: true,
        label: { type: 'plain_text', text: 'Name (default: the file name)' },
        element: { type: 'plain_text_input', action_id: NAME, max_length: 80 },
      },
      {
        type: 'input',
        block_id: REPLACE,
        optional: true,
        label: { type: 'plain_text', text: 'If the name is taken' },
        element: {
          type: 'checkboxes',
          action_id: REPLACE,
          options: [{ text: { type: 'plain_text', text: 'Replace that LoRA' }, value: 'replace' }],
        },
      },
    ],
  };
}

export function loraAddChannel(view: ViewOutput): string | null {
  try {
    const m = JSON.parse(view.private_metadata) as { channel?: unknown };
    return typeof m.channel === 'string' ? m.channel : null;
  } catch {
    return null;
  }
}

export interface LoraUpload {
  fileName: string;
  url: string;
  name: string;
  replace: boolean;
}

/** What the submitted modal asks to add, or the errors to show beside its fields, before any download. */
export function readLoraUpload(
  view: ViewOutput,
  maxBytes: number,
): { ok: true; upload: LoraUpload } | { ok: false; errors: Record<string, string> } {
  const values = view.state.values;
  const file = values[FILE]?.[FILE]?.files?.[0];
  if (!file) return { ok: false, errors: { [FILE]: 'Attach the LoRA’s .safetensors file.' } };
  if (PICKLED.test(file.name))
    return {
      ok: false,
      errors: {
        [FILE]: `${file.name} is a pickled file, which can run code when loaded: use its .safetensors version.`,
      },
    };
  if (!/\.safetensors$/i.test(file.name))
    return { ok: false, errors: { [FILE]: `${file.name} is not a .safetensors file.` } };
  if (file.size !== undefined && file.size > maxBytes)
    return {
      ok: false,
      errors: {
        [FILE]: `${file.name} is ${formatBytes(file.size)}; LoRAs up to ${formatBytes(maxBytes)} can be added.`,
      },
    };
  const url = file.url_private_download ?? file.url_private;
  if (!url) return { ok: false, errors: { [FILE]: 'Slack gave no download link for the file; try again.' } };
  const typed = values[NAME]?.[NAME]?.value?.trim();
  const name = typed ? typed : file.name.replace(/\.safetensors$/i, '');
  const replace = (values[REPLACE]?.[REPLACE]?.selected_options ?? []).some((o) => o.value === 'replace');
  return { ok: true, upload: { fileName: file.name, url, name, replace } };
}

/**
 * Files come from Slack's file host; the bot token goes nowhere else. `apiUrl` (SLACK_API_URL)
 * adds its own origin, for a stand-in.
 */
export function isSlackFileUrl(url: string, apiUrl?: string): boolean {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return false;
  }
  if (u.protocol === 'https:' && (u.hostname === 'files.slack.com' || u.hostname.endsWith('.slack.com')))
    return true;
  return apiUrl !== undefined && URL.canParse(apiUrl) && u.origin === new URL(apiUrl).origin;
}

/** The file's bytes, read with the bot token and abandoned as soon as they pass `maxBytes`. */
export function downloadSlackFile(url: string, token: string, maxBytes: number): Promise<Uint8Array> {
  return downloadCapped(url, maxBytes, { headers: { Authorization: `Bearer ${token}` }, source: 'Slack' });
}
