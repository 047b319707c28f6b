// A button, select or modal handler, split as Sapphire does: parse() decodes the custom_id and
// loads what it names (or says why it cannot), run() acts on it.

import type { MessageReply } from '../../../commands/reply.ts';
import type { DiscordDeps } from '../context.ts';

export type Parsed<T> = { ok: true; value: T } | { ok: false; reply: MessageReply };

export interface ComponentHandler<I, T> {
  /** null: the custom_id is not this handler's */
  parse(interaction: I, deps: DiscordDeps): Promise<Parsed<T> | null>;
  run(interaction: I, parsed: T, deps: DiscordDeps): Promise<void>;
}
