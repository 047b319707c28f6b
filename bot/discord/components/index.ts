// Buttons, selects and modal submissions, routed to their handler: the weight form's
// modal first, then every action id the commands render.

import type { MessageComponentInteraction, ModalSubmitInteraction } from 'discord.js';
import { userErrorReply } from '../../../commands/reply.ts';
import type { DiscordDeps } from '../context.ts';
import { send } from '../respond.ts';
import { actionHandler } from './action.ts';
import type { ComponentHandler } from './types.ts';
import { weightButtonHandler, weightModalHandler } from './weight.ts';

/** Parses with `handler` and runs it; false when the id is not the handler's. */
async function attempt<I extends MessageComponentInteraction | ModalSubmitInteraction, T>(
  handler: ComponentHandler<I, T>,
  interaction: I,
  deps: DiscordDeps,
): Promise<boolean> {
  const parsed = await handler.parse(interaction, deps);
  if (parsed === null) return false;
  if (parsed.ok) await handler.run(interaction, parsed.value, deps);
  else await send(interaction, parsed.reply, deps);
  return true;
}

export async function handleComponent(
  interaction: MessageComponentInteraction | ModalSubmitInteraction,
  deps: DiscordDeps,
): Promise<void> {
  if (interaction.isButton()) {
    if (await attempt(weightButtonHandler, interaction, deps)) return;
    await attempt(actionHandler, interaction, deps);
    return;
  }
  if (interaction.isStringSelectMenu()) {
    await attempt(actionHandler, interaction, deps);
    return;
  }
  if (interaction.isModalSubmit() && (await attempt(weightModalHandler, interaction, deps))) return;
  await send(
    interaction,
    userErrorReply('That control is from an older version of the bot.', 'Run the command again.'),
    deps,
  );
}
