// The Discord adapter: a discord.js gateway client that turns slash commands, autocomplete,
// buttons, selects and modals into ComposeCommands calls and renders their replies. DISCORD_API_URL
// (and DISCORD_GATEWAY_URL) point it at another server, such as the tests' stand-in.

import {
  Client,
  Events,
  GatewayIntentBits,
  type Interaction,
  MessageFlags,
  SimpleShardingStrategy,
  type WebSocketOptions,
} from 'discord.js';
import { type RateLimitOptions, UserRateLimit } from '../../commands/rate-limit.ts';
import { userErrorReply } from '../../commands/reply.ts';
import type { DiscordConfig } from '../../config/index.ts';
import type { Adapter } from '../adapter.ts';
import type { App } from '../app.ts';
import type { Logger } from '../log.ts';
import { StartProblem, unreachableCode } from '../start-problem.ts';
import { findCommand } from './commands/index.ts';
import { handleComponent } from './components/index.ts';
import { commandLimits, type DiscordDeps } from './context.ts';
import { DEFAULT_TOKEN_LIFETIME_MS, JobDelivery } from './delivery.ts';
import { describeError, scrubTokens } from './errors.ts';
import { send } from './respond.ts';

export { registerCommands } from './registration.ts';

export interface DiscordAdapterOptions {
  /** defaults to the app's logger */
  log?: Logger;
  /** the clock interaction tokens are timed by */
  now?: () => number;
  /** how long an interaction token is used before results go to the channel instead */
  tokenLifetimeMs?: number;
  /** least time between two progress edits of one reply */
  progressIntervalMs?: number;
  /** the per-user limit; what it leaves out takes DEFAULT_RATE_LIMIT, as on every platform */
  rateLimit?: Partial<RateLimitOptions>;
  /** how long to wait for the gateway's READY */
  readyTimeoutMs?: number;
}

type GatewayManager = Parameters<NonNullable<WebSocketOptions['buildStrategy']>>[0];

/** discord.js asks the REST API where the gateway is; this answers with the configured URL instead. */
function gatewayAt(url: string) {
  return (manager: GatewayManager) => {
    const announced = manager.fetchGatewayInformation.bind(manager);
    manager.fetchGatewayInformation = async (force?: boolean) => ({ ...(await announced(force)), url });
    return new SimpleShardingStrategy(manager);
  };
}

function createClient(config: DiscordConfig): Client {
  return new Client({
    // Guilds brings each server's roles, for DISCORD_ADMIN_ROLE given by name; nothing else is read.
    intents: [GatewayIntentBits.Guilds],
    rest: config.apiUrl ? { api: config.apiUrl } : {},
    ws: config.gatewayUrl ? { buildStrategy: gatewayAt(config.gatewayUrl) } : {},
    allowedMentions: { parse: [] },
  });
}

export async function startDiscord(app: App, options: DiscordAdapterOptions = {}): Promise<Adapter> {
  const config = app.config.discord;
  if (!config) throw new Error('set DISCORD_TOKEN and DISCORD_APPLICATION_ID to run the Discord adapter');
  const log = (options.log ?? app.log).child('discord');
  const now = options.now ?? Date.now;
  const client = createClient(config);
  client.on(Events.Error, (e) => log.error(`gateway: ${describeError(e)}`));
  client.on(Events.Warn, (m) => log.warn(`gateway: ${scrubTokens(m)}`));
  client.on(Events.ShardDisconnect, (e, id) => log.warn(`gateway shard ${id} disconnected (${e.code})`));
  client.on(Events.ShardReconnecting, (id) => log.info(`gateway shard ${id} reconnecting`));

  let readyTimer: ReturnType<typeof setTimeout> | undefined;
  const ready = new Promise<Client<true>>((resolve, reject) => {
    readyTimer = setTimeout(
      () =>
        reject(new StartProblem('Discord did not say READY in time; check DISCORD_TOKEN and the network')),
      options.readyTimeoutMs ?? 60_000,
    );
    client.once(Events.ClientReady, (c) => {
      clearTimeout(readyTimer);
      resolve(c);
    });
  });
  try {
    await client.login(config.token);
  } catch (e) {
    clearTimeout(readyTimer);
    await client.destroy();
    throw loginProblem(e, config);
  }
  const readyClient = await ready.catch(async (e: Error) => {
    await client.destroy();
    throw e;
  });

  const delivery = new JobDelivery(app, readyClient, log, {
    progressIntervalMs: options.progressIntervalMs ?? 1000,
    tokenLifetimeMs: options.tokenLifetimeMs ?? DEFAULT_TOKEN_LIFETIME_MS,
    now,
  });
  const deps: DiscordDeps = {
    app,
    config,
    client: readyClient,
    delivery,
    limits: commandLimits(app.config),
    rateLimit: new UserRateLimit({ ...options.rateLimit, now }),
    log,
    now,
  };
  delivery.adoptOrphans();
  client.on(Events.InteractionCreate, (interaction) => void dispatch(interaction, deps));
  log.info(`connected as ${readyClient.user.tag}; run \`npm run register\` after changing commands`);

  return {
    name: 'discord',
    address: `${readyClient.user.tag} (application ${config.applicationId})`,
    async stop() {
      delivery.stop();
      // Closing on purpose is no disconnect to report.
      client.removeAllListeners();
      await client.destroy();
    },
  };
}

/** Why login failed, as the operator can act on it: a refused token, no network, or what Discord said. */
function loginProblem(e: unknown, config: DiscordConfig): Error {
  if ((e as { code?: unknown }).code === 'TokenInvalid')
    return new StartProblem(
      "DISCORD_TOKEN was refused by Discord (not a valid bot token): copy it again from the Bot page of the application's settings",
    );
  const unreachable = unreachableCode(e);
  if (unreachable) {
    const host = new URL(config.apiUrl ?? 'https://discord.com/api').host;
    return new StartProblem(`cannot reach Discord at ${host} (${unreachable}): check this machine's network`);
  }
  return new Error(`Discord refused to connect: ${describeError(e)}`);
}

async function dispatch(interaction: Interaction, deps: DiscordDeps): Promise<void> {
  try {
    if (interaction.isAutocomplete()) {
      const command = findCommand(interaction.commandName);
      if (command?.autocomplete) await command.autocomplete(interaction, deps);
      else await interaction.respond([]);
      return;
    }
    if (
      !interaction.isChatInputCommand() &&
      !interaction.isMessageComponent() &&
      !interaction.isModalSubmit()
    )
      return;
    deps.log.debug(`${describeInteraction(interaction)} from user ${interaction.user.id}`);
    const allowed = deps.rateLimit.take(interaction.user.id);
    if (!allowed.ok) {
      await send(interaction, allowed.reply, deps);
      return;
    }
    if (interaction.isChatInputCommand()) {
      const command = findCommand(interaction.commandName);
      if (command) await command.execute(interaction, deps);
      else
        await send(
          interaction,
          userErrorReply(`/${interaction.commandName} is not a command of this bot any more.`, 'See /help.'),
          deps,
        );
      return;
    }
    await handleComponent(interaction, deps);
  } catch (e) {
    deps.log.error(`interaction ${interaction.type} failed: ${describeError(e, { stack: true })}`);
    await apologise(interaction, deps);
  }
}

function describeInteraction(interaction: Interaction): string {
  if (interaction.isChatInputCommand()) return `/${interaction.commandName}`;
  if (interaction.isMessageComponent() || interaction.isModalSubmit()) return `'${interaction.customId}'`;
  return `interaction type ${interaction.type}`;
}

/** Tells the user something broke on our side, if the interaction can still be answered. */
async function apologise(interaction: Interaction, deps: DiscordDeps): Promise<void> {
  if (!interaction.isRepliable()) return;
  const text = '⚠️ Something went wrong on our side. Try again in a moment.';
  try {
    if (interaction.deferred || interaction.replied)
      await interaction.followUp({ content: text, flags: MessageFlags.Ephemeral });
    else await interaction.reply({ content: text, flags: MessageFlags.Ephemeral });
  } catch (e) {
    deps.log.debug(`could not tell the user: ${describeError(e)}`);
  }
}
