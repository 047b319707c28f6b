// What the playground's input box understands: the slash commands of the chat platforms,
// and plain text as a /compose prompt.

import { closestNames, quotedAlternatives } from '../../commands/compose/closest.ts';
import { readLorasText } from '../../commands/loras.ts';
import { type MessageReply, type Reply, textReply, userErrorReply } from '../../commands/reply.ts';
import type { ChatContext, CommandOutcome, ComposeCommands } from '../../commands/service.ts';
import { COMMAND_TABLE, commandUsage } from '../../commands/table.ts';
import { CIVITAI_ADD_HINT, type CivitaiAddRequest, readAddText } from '../civitai/index.ts';

const COMMAND = /^\s*\/([^\s]*)\s*([\s\S]*)$/;

/** Runs what the user typed: `/name rest`, or plain text as /compose. */
export async function runCommand(
  commands: ComposeCommands,
  typed: string,
  ctx: ChatContext,
  library: { dir: string },
  fromCivitai?: (request: CivitaiAddRequest) => Promise<MessageReply>,
): Promise<CommandOutcome> {
  const text = typed.trim();
  if (text === '') return { reply: userErrorReply('Type a command, e.g. `/compose …`, or `/help`.') };
  const m = COMMAND.exec(text);
  if (!m) return commands.compose(text, ctx);
  const [, name, rest] = m;
  switch (name.toLowerCase()) {
    case 'compose':
      if (rest.trim() === '') return { reply: commands.help() };
      return commands.compose(rest, ctx);
    case 'loras': {
      const { query, page } = readLorasText(rest);
      return { reply: commands.loras(query, page) };
    }
    case 'lora':
      if (fromCivitai && /^add\s/i.test(rest.trim())) {
        const request = readAddText(rest.trim().slice(4));
        if (request) return { reply: await fromCivitai(request) };
      }
      // Chat platforms upload files with /lora add; here the folder is on this machine.
      if (/^(add|remove)\b/i.test(rest.trim())) {
        return {
          reply: textReply(
            `In the playground, add or remove a LoRA by copying its .safetensors file into (or out of) the LoRA folder, \`${library.dir}\`; the library notices within seconds. From Civitai: ${CIVITAI_ADD_HINT}.`,
            true,
          ),
        };
      }
      return { reply: await commands.lora(rest, { confirmAdmin: async () => ctx.isAdmin }) };
    case 'queue':
      return { reply: await commands.queueStatus(ctx) };
    case 'help':
      return { reply: withCommandList(commands.help()) };
    default:
      return { reply: unknownCommand(name) };
  }
}

function withCommandList(help: Reply): Reply {
  if (help.kind !== 'message') return help;
  const list = COMMAND_TABLE.map((c) => `\`${commandUsage(c)}\` ${c.description}`).join('\n');
  return { ...help, text: `**Commands**\n${list}\nPlain text works as /compose.` };
}

function unknownCommand(name: string): MessageReply {
  const near = closestNames(
    name,
    COMMAND_TABLE.map((c) => c.name),
  );
  const known = COMMAND_TABLE.map((c) => `/${c.name}`).join(', ');
  return userErrorReply(
    near.length > 0
      ? `unknown command '/${name}' — did you mean ${quotedAlternatives(near.map((n) => `/${n}`))}?`
      : `unknown command '/${name}'`,
    `The playground knows ${known}.`,
  );
}
