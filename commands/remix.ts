// Remix: a picture the bot made carries its /compose command; reading it back gives the user that command to
// edit and run. The command is only ever parsed with the /compose grammar, never run from the file.

import {
  COMPOSITION_METHODS,
  type ComposeRequest,
  type ComposeSettings,
  DEFAULT_COMPOSE_SETTINGS,
  formatCompose,
  parseCompose,
  SAMPLERS,
} from './compose/index.ts';
import type { PictureRecipe, RecipeReader } from './ports.ts';
import type { MessageReply } from './reply.ts';
import { userErrorReply } from './reply.ts';

/** Largest upload remix reads: a 1024² PNG is a few MB; anything far larger is not one of ours. */
export const MAX_REMIX_BYTES = 16 * 1024 * 1024;

/**
 * The /compose command (with "/compose") that reproduces `request` on any bot: every setting written out,
 * since another bot's defaults may differ; only --masks, which does not change the picture, is left out.
 */
export function recipeCommand(
  request: ComposeRequest,
  settings: ComposeSettings = DEFAULT_COMPOSE_SETTINGS,
): string {
  const other = <T>(list: readonly T[], value: T): T => list.find((v) => v !== value) ?? value;
  // The request was checked against this bot's limits already; formatting must not refuse it for others'.
  const never: ComposeSettings = {
    limits: {
      ...settings.limits,
      maxLoras: Number.MAX_SAFE_INTEGER,
      minWeight: 0,
      maxWeight: Number.MAX_SAFE_INTEGER,
      minSteps: 1,
      maxSteps: Number.MAX_SAFE_INTEGER,
      minCfg: 0,
      maxCfg: Number.MAX_SAFE_INTEGER,
      minSide: 8,
      maxSide: Number.MAX_SAFE_INTEGER,
      sideMultiple: 8,
      maxSeed: Number.MAX_SAFE_INTEGER,
      maxPromptLength: Number.MAX_SAFE_INTEGER,
      maxNegativeLength: Number.MAX_SAFE_INTEGER,
    },
    defaults: {
      steps: -1,
      width: -1,
      height: -1,
      cfg: Number.NaN,
      sampler: other(SAMPLERS, request.sampler),
      method: other(COMPOSITION_METHODS, request.method),
      masks: request.masks,
      negativePrompt: '',
    },
  };
  return `/compose ${formatCompose(request, never)}`;
}

export interface RemixLibrary {
  get(name: string): { name: string } | undefined;
}

/** What remix reads a picture with, and the library it looks the picture's LoRAs up in. */
export interface RemixPorts {
  library: RemixLibrary;
  readRecipe: RecipeReader;
}

export interface RemixOutcome {
  reply: MessageReply;
  /** The command text to put in the user's compose box, without "/compose". */
  prefill?: string;
}

const COMMAND_PREFIX = /^\s*\/compose\s+/;

function codeBlock(text: string): string {
  return `\`\`\`\n${text.replaceAll('```', '`\u200b``')}\n\`\`\``;
}

/** The missing LoRAs of a recipe, with the hash Civitai finds them by. */
function missingLoras(request: ComposeRequest, recipe: PictureRecipe, library: RemixLibrary): string[] {
  const names = [...request.bindings.map((b) => b.lora), ...(request.style ? [request.style.lora] : [])];
  return names
    .filter((name) => !library.get(name))
    .map((name) => {
      const hash = recipe.loras.find((l) => l.name.toLowerCase() === name.toLowerCase())?.hash;
      // The file says what the hash is; only a well-formed AutoV2 is repeated.
      return typeof hash === 'string' && /^[0-9a-f]{10}$/.test(hash)
        ? `'${name}' (AutoV2 ${hash})`
        : `'${name}'`;
    });
}

/** What an uploaded picture gives back: its command, editable, or why there is none. */
export function remixReply(
  bytes: Uint8Array,
  { library, readRecipe }: RemixPorts,
  settings: ComposeSettings = DEFAULT_COMPOSE_SETTINGS,
): RemixOutcome {
  if (bytes.byteLength > MAX_REMIX_BYTES)
    return {
      reply: userErrorReply(
        'That file is too large to be a picture from this bot.',
        'Attach the PNG it posted.',
      ),
    };
  const reading = readRecipe(bytes);
  if (reading.kind === 'not-png') {
    return {
      reply: userErrorReply(
        'That file is not a PNG, so it carries no /compose command.',
        'Attach the PNG the bot posted, as downloaded (not a screenshot or a converted copy).',
      ),
    };
  }
  if (reading.kind === 'foreign') {
    return {
      reply: userErrorReply(
        reading.parameters === undefined
          ? 'That PNG carries no recipe: it was not made by this bot, or an app removed its text when it re-saved it.'
          : 'That PNG was made by another tool: it has generation settings but no /compose command to remix.',
        'Remix takes a PNG this bot posted, downloaded as the original file.',
      ),
    };
  }
  const { recipe } = reading;
  const text = recipe.command.replace(COMMAND_PREFIX, '').trim();
  const parsed = parseCompose(text, settings);
  if (!parsed.ok) {
    return {
      reply: userErrorReply(
        `That picture's command no longer reads as /compose here: ${parsed.error.message}`,
        `Its command was:\n${codeBlock(`/compose ${text.length > 1500 ? `${text.slice(0, 1499)}…` : text}`)}`,
      ),
    };
  }
  const missing = missingLoras(parsed.request, recipe, library);
  const lines = [`Made with:`, codeBlock(`/compose ${text}`)];
  if (missing.length) {
    lines.push(
      `This bot's library lacks ${missing.join(', ')}: ask an admin to add ${missing.length === 1 ? 'it' : 'them'} with /lora add, or swap in another LoRA.`,
    );
  } else lines.push('Edit it and run it with /compose.');
  return {
    reply: {
      kind: 'message',
      ephemeral: true,
      card: {
        title: 'Remix this picture',
        description: lines.join('\n'),
        fields: [
          { name: 'Seed', value: String(parsed.request.seed ?? 'random'), inline: true },
          { name: 'Made by', value: String(recipe.generator).slice(0, 100), inline: true },
        ],
        tone: missing.length ? 'warning' : 'brand',
      },
    },
    prefill: text,
  };
}
