// Completion for the input box: command names after `/`, LoRA names after `/lora `, and a
// LoRA being bound at the end of a prompt (`cat:<ta`), each offered as the whole text.

import { completeName } from '../../commands/compose/closest.ts';
import { COMMAND_TABLE, commandUsage } from '../../commands/table.ts';

export interface Completion {
  /** the whole input with the completion applied */
  text: string;
  /** what the list shows */
  label: string;
  detail?: string;
}

export interface CompletionSource {
  /** names /compose may use */
  names(): readonly string[];
  /** a short description of a LoRA (its triggers) */
  describe?(name: string): string | undefined;
}

export const MAX_COMPLETIONS = 25;

const COMMAND_NAME = /^\s*\/([a-z]*)$/i;
const LORA_COMMAND = /^(\s*\/lora\s+)<?([^\s<>]*)$/i;
// A binding being typed at the end: `subject:<partial` or `subject:partial`, subjects bare or quoted.
const PARTIAL_BINDING = /(?:^|\s)(?:"[^"]*"|“[^”]*”|[\p{L}\p{N}_][\p{L}\p{M}\p{N}_'’-]*):(<?)([^\s<>:@"]*)$/u;

/** Up to MAX_COMPLETIONS completions of `text` (what precedes the caret), best first. */
export function complete(text: string, source: CompletionSource): Completion[] {
  const command = COMMAND_NAME.exec(text);
  if (command) {
    const typed = command[1].toLowerCase();
    return COMMAND_TABLE.filter((c) => c.name.startsWith(typed)).map((c) => ({
      text: `/${c.name}${c.usage === '' ? '' : ' '}`,
      label: commandUsage(c),
      detail: c.description,
    }));
  }
  const lora = LORA_COMMAND.exec(text);
  if (lora) {
    return completeName(lora[2], source.names(), MAX_COMPLETIONS).map((name) => ({
      text: `${lora[1]}${name}`,
      label: name,
      ...described(source, name),
    }));
  }
  // Other commands take no LoRA bindings.
  if (/^\s*\/(?!compose\b)/i.test(text)) return [];
  const binding = PARTIAL_BINDING.exec(text);
  if (!binding) return [];
  const partial = binding[2];
  const head = text.slice(0, text.length - partial.length - binding[1].length);
  return completeName(partial, source.names(), MAX_COMPLETIONS).map((name) => ({
    text: `${head}<${name}> `,
    label: name,
    ...described(source, name),
  }));
}

function described(source: CompletionSource, name: string): { detail?: string } {
  const detail = source.describe?.(name);
  return detail ? { detail } : {};
}
