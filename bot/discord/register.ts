// npm run register: registers /compose, /loras, /lora, /queue and /help with Discord, for the
// server in DISCORD_GUILD_ID or globally. Run it after changing a command's definition.

import { DiscordAPIError } from 'discord.js';
import { ConfigError, loadConfig } from '../../config/index.ts';
import { describeError } from './errors.ts';
import { registerCommands } from './registration.ts';

try {
  const config = loadConfig(process.env);
  const done = await registerCommands(config);
  process.stdout.write(`registered ${done.names.map((n) => `/${n}`).join(', ')} ${done.scope}\n`);
} catch (e) {
  const hint =
    e instanceof DiscordAPIError && e.status === 401
      ? '\nDiscord refused DISCORD_TOKEN: copy the bot token again from the Developer Portal.'
      : e instanceof DiscordAPIError && e.status === 403
        ? '\nCheck DISCORD_APPLICATION_ID, and that the bot was invited to DISCORD_GUILD_ID with the applications.commands scope.'
        : '';
  process.stderr.write(`${e instanceof ConfigError ? e.message : describeError(e)}${hint}\n`);
  process.exit(1);
}
