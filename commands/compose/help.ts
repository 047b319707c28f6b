// /compose help: the syntax with examples, each shown with the prompt it really produces.

import type { MessageReply } from '../reply.ts';
import { applySuggestion, type ComposeError, pointAtError } from './errors.ts';
import { COMPOSE_OPTIONS } from './options.ts';
import { parseCompose } from './parse.ts';
import { type ComposeSettings, DEFAULT_COMPOSE_SETTINGS } from './request.ts';

/** Commands the help shows; a test checks that each one parses. */
export const COMPOSE_EXAMPLES = {
  list: 'cat:<sks-cat> penguin:<ohwx-penguin> in a house',
  three: 'cat:<tabby> dog:<corgi> owl:<barn-owl> on a sofa',
  sentence: 'a cat:<tabby> chasing a penguin:<plush-penguin> on the ice',
  quoted: '"red panda":<red-panda>@0.8 eating bamboo style:<watercolor>@0.6',
  options: 'cat:<tabby> in a garden --seed 42 --steps 30 --size 512x768 --neg "blurry, extra legs"',
} as const;

/**
 * The options example with a portrait of the model's own size (512x768 for SD 1.5, 256x384 for
 * a 256 px model): pictures far from the model's own area come out worse.
 */
export function optionsExample(settings: ComposeSettings): string {
  const { sideMultiple, maxSide } = settings.limits;
  const side = settings.defaults.width ?? 512;
  const tall = Math.round((side * 1.5) / sideMultiple) * sideMultiple;
  const size = tall <= maxSide ? `${side}x${tall}` : `${side}x${side}`;
  return COMPOSE_EXAMPLES.options.replace('--size 512x768', `--size ${size}`);
}

function promptOf(command: string, settings: ComposeSettings): string {
  const parsed = parseCompose(command, settings);
  return parsed.ok ? parsed.request.prompt : '(example does not parse)';
}

function example(command: string, settings: ComposeSettings): string {
  return `\`/compose ${command}\`\n→ “${promptOf(command, settings)}”`;
}

export function helpReply(settings: ComposeSettings = DEFAULT_COMPOSE_SETTINGS): MessageReply {
  const { limits } = settings;
  const options = COMPOSE_OPTIONS.map((o) => `\`${o.usage}\` ${o.summary(settings)}`).join('\n');
  return {
    kind: 'message',
    ephemeral: true,
    card: {
      title: '/compose: several LoRAs in one picture',
      description:
        'Bind each subject of your prompt to a LoRA with `subject:<lora>`. Every LoRA draws only its own ' +
        `subject (CLoRA keeps them apart), up to ${limits.maxLoras} LoRAs a picture.`,
      tone: 'brand',
      fields: [
        {
          name: 'Bind subjects',
          value:
            `${example(COMPOSE_EXAMPLES.list, settings)}\n${example(COMPOSE_EXAMPLES.three, settings)}\n` +
            'Bindings at the start become a list with “a”/“an”. Between two letters the brackets are ' +
            'optional (`cat:tabby`); anything else with a colon, like `10:30` or `16:9`, is prompt text. ' +
            'When in doubt, quote it: `"note:this"`.',
        },
        {
          name: 'Your own sentence',
          value: `${example(COMPOSE_EXAMPLES.sentence, settings)}\nA binding inside a sentence keeps your words.`,
        },
        {
          name: 'Weights, several words, style',
          value:
            `${example(COMPOSE_EXAMPLES.quoted, settings)}\n` +
            `\`@0.8\` sets a LoRA's strength (${limits.minWeight}–${limits.maxWeight}, default 1). ` +
            'Quote subjects of several words. `style:<lora>` applies one style LoRA to the whole picture.',
        },
        {
          name: 'Options',
          value: `${options}\nWrite \`--seed 42\` or \`--seed=42\`; a phone's — works as --.`,
        },
        { name: 'With options', value: example(optionsExample(settings), settings) },
      ],
      footer: 'Under each picture: Rerun (same seed), New seed, Show masks, Compare with merge, Tweak.',
    },
  };
}

// Backticks typed by the user would close our code spans early.
function inCode(text: string): string {
  return text.replace(/`/g, 'ˋ');
}

/** A parse or resolve error as the user sees it: what is wrong, where, and the fix if we know it. */
export function composeErrorReply(input: string, error: ComposeError): MessageReply {
  const fixed = applySuggestion(input, error);
  const lines = [`⚠️ ${error.message}`, '```', inCode(pointAtError(input, error)), '```'];
  if (fixed !== null) lines.push(`Try: \`/compose ${inCode(fixed.replace(/^\s*\/compose\s*/i, ''))}\``);
  return { kind: 'message', text: lines.join('\n'), ephemeral: true };
}
