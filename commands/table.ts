// The bot's slash commands, declared once: each adapter projects this table (Discord's
// registered definitions, Slack's manifest and listeners, the playground's list and completions).

export const COMMAND_NAMES = ['compose', 'loras', 'lora', 'queue', 'help'] as const;
export type CommandName = (typeof COMMAND_NAMES)[number];

export interface CommandEntry {
  name: CommandName;
  /** What it does, in one line of at most 100 characters (Discord's limit for a description). */
  description: string;
  /** What may follow the name, e.g. "[search] [page]"; empty when it takes nothing. */
  usage: string;
}

export const COMMAND_TABLE: readonly CommandEntry[] = [
  { name: 'compose', description: 'Compose several LoRAs into one picture with CLoRA', usage: '<prompt>' },
  { name: 'loras', description: 'List the LoRAs you can compose with', usage: '[search] [page]' },
  {
    name: 'lora',
    description: "One LoRA's card, or add a new one (admins)",
    usage: '<name> | add [civitai:<id> [name]]',
  },
  { name: 'queue', description: 'Your recent pictures and where they stand in the queue', usage: '' },
  { name: 'help', description: 'How to write a /compose prompt, with examples', usage: '' },
];

const byName = new Map(COMMAND_TABLE.map((c) => [c.name, c]));

export function commandEntry(name: CommandName): CommandEntry {
  return byName.get(name)!;
}

/** "/loras [search] [page]": the command as a user types it. */
export function commandUsage(entry: CommandEntry): string {
  return entry.usage === '' ? `/${entry.name}` : `/${entry.name} ${entry.usage}`;
}
