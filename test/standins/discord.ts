// A local stand-in for Discord's servers, speaking the real protocols so discord.js connects to
// it unchanged (pointed here by DISCORD_API_URL): REST v10 over HTTP (gateway discovery,
// application commands, interaction callbacks, webhook edits with multipart attachments,
// channel messages, attachment downloads) and the gateway over WebSocket (HELLO, IDENTIFY,
// READY and GUILD_CREATE, heartbeats and their ACKs, dispatches). It enforces what Discord
// enforces and a bot can get wrong — the 3-second ack window, one acknowledgement, 15-minute
// tokens, component and embed limits, upload limits, bot-token auth — and records every REST
// call (method, route, JSON body, uploaded files) for tests to assert on.

import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type WebSocket, WebSocketServer } from 'ws';

// biome-ignore lint/suspicious/noExplicitAny: JSON as it crosses the wire, checked field by field.
type Wire = any;

export const DEFAULT_ATTACHMENT_LIMIT = 10 * 1024 * 1024;
const DISCORD_EPOCH = 1420070400000n;
const OP = {
  dispatch: 0,
  heartbeat: 1,
  identify: 2,
  resume: 6,
  invalidSession: 9,
  hello: 10,
  heartbeatAck: 11,
};
const CALLBACK = { message: 4, deferredMessage: 5, deferredUpdate: 6, update: 7, autocomplete: 8, modal: 9 };
const INTERACTION = { command: 2, component: 3, autocomplete: 4, modal: 5 };
const OPTION_TYPE = { subcommand: 1, string: 3, integer: 4, boolean: 5, number: 10, attachment: 11 };

export interface Person {
  id: string;
  username: string;
  /** permission bits of the member in the guild */
  permissions?: bigint;
  roles?: string[];
}

export interface StandInRole {
  id: string;
  name: string;
  permissions?: bigint;
}

export interface StandInOptions {
  token: string;
  applicationId: string;
  guild: { id: string; name: string; channelId: string; roles: StandInRole[] };
  botUser?: { id: string; username: string };
  /** HELLO's heartbeat_interval; Discord says about 41 s, tests want it short */
  heartbeatIntervalMs?: number;
  /** how long an interaction token works (Discord: 15 minutes) */
  tokenLifetimeMs?: number;
  /** how long an interaction waits for its first response (Discord: 3 seconds) */
  ackWindowMs?: number;
}

export interface RecordedFile {
  field: string;
  name: string;
  contentType: string;
  bytes: Buffer;
}

export interface RecordedCall {
  method: string;
  /** path after /api/v10, decoded: /webhooks/{app}/{token}/messages/@original */
  route: string;
  query: Record<string, string>;
  /** the JSON body, or the multipart body's payload_json */
  body: Wire;
  files: RecordedFile[];
  /** carried the right `Authorization: Bot <token>` */
  authorized: boolean;
  status: number;
  response: Wire;
  /** Date.now() when it arrived */
  at: number;
}

export interface StoredMessage {
  message: Wire;
  files: Map<string, RecordedFile>;
}

export interface SentInteraction {
  id: string;
  token: string;
  payload: Wire;
  /** Date.now() when it was dispatched */
  sentAt: number;
}

interface InteractionState extends SentInteraction {
  createdAt: number;
  limit: number;
  acked: boolean;
  originalId?: string;
  /** the message a component sits on */
  sourceMessageId?: string;
  modal?: Wire;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: Wire,
  ) {
    super(body.message);
  }
}

const invalidForm = (problem: string) =>
  new HttpError(400, {
    message: 'Invalid Form Body',
    code: 50035,
    errors: { _errors: [{ message: problem }] },
  });

export class DiscordStandIn extends EventEmitter {
  readonly calls: RecordedCall[] = [];
  readonly messages = new Map<string, StoredMessage>();
  readonly commands = new Map<string, Wire[]>();
  readonly gateway = {
    connections: 0,
    /** the path each connection opened (/gateway as announced, /gateway-direct for a configured URL) */
    paths: [] as string[],
    identifies: [] as Wire[],
    heartbeats: 0,
    acks: 0,
    closes: [] as number[],
  };
  private readonly interactions = new Map<string, InteractionState>();
  private readonly uploads = new Map<string, RecordedFile>();
  private readonly sockets = new Set<WebSocket>();
  private readonly identified = new Map<WebSocket, { seq: number; sessionId: string }>();
  private readonly http: Server;
  private readonly wss: WebSocketServer;
  private clockOffset = 0;
  private frozenAt: number | undefined;
  private counter = 0n;
  private base = '';
  readonly bot: { id: string; username: string };

  private constructor(readonly options: StandInOptions) {
    super();
    // Every waitForCall listens until its call arrives; many tests wait at once.
    this.setMaxListeners(0);
    this.bot = options.botUser ?? { id: '1100000000000000001', username: 'clora' };
    this.http = createServer((req, res) => void this.serve(req, res));
    this.wss = new WebSocketServer({ noServer: true });
    this.http.on('upgrade', (req, socket, head) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname !== '/gateway' && url.pathname !== '/gateway-direct') {
        socket.destroy();
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, url));
    });
  }

  static async start(options: StandInOptions): Promise<DiscordStandIn> {
    const standIn = new DiscordStandIn(options);
    await new Promise<void>((resolve) => standIn.http.listen(0, '127.0.0.1', resolve));
    const { port } = standIn.http.address() as AddressInfo;
    standIn.base = `http://127.0.0.1:${port}`;
    return standIn;
  }

  /** DISCORD_API_URL for the bot: discord.js appends /v10. */
  get apiUrl(): string {
    return `${this.base}/api`;
  }

  get gatewayUrl(): string {
    return `${this.base.replace('http', 'ws')}/gateway`;
  }

  /** Discord's clock, for token expiry and rate limits; tests move it forward or stop it. */
  now(): number {
    return (this.frozenAt ?? Date.now()) + this.clockOffset;
  }

  advanceClock(ms: number): void {
    this.clockOffset += ms;
  }

  /** Stops the clock, so what depends on elapsed time (a rate limit's refill) is deterministic. */
  freezeClock(): void {
    this.frozenAt = Date.now();
  }

  resumeClock(): void {
    if (this.frozenAt !== undefined) this.clockOffset -= Date.now() - this.frozenAt;
    this.frozenAt = undefined;
  }

  async close(): Promise<void> {
    for (const ws of this.sockets) ws.terminate();
    this.wss.close();
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }

  // ── recording ─────────────────────────────────────────────────────────────────────────

  /** The first call from index `from` on that matches, waiting for it up to `timeoutMs`. */
  waitForCall(match: (call: RecordedCall) => boolean, timeoutMs = 10_000, from = 0): Promise<RecordedCall> {
    const found = this.calls.slice(from).find(match);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('call', listen);
        reject(new Error(`no matching Discord call within ${timeoutMs} ms`));
      }, timeoutMs);
      const listen = (call: RecordedCall) => {
        if (!match(call)) return;
        clearTimeout(timer);
        this.off('call', listen);
        resolve(call);
      };
      this.on('call', listen);
    });
  }

  /** REST calls made with this interaction's id or token. */
  callsFor(interaction: SentInteraction): RecordedCall[] {
    return this.calls.filter(
      (c) =>
        c.route.includes(`/${interaction.token}`) || c.route.startsWith(`/interactions/${interaction.id}/`),
    );
  }

  /** The message an interaction's response created (after a type 4 or 5 callback). */
  original(interaction: SentInteraction): StoredMessage | undefined {
    const id = this.interactions.get(interaction.id)?.originalId;
    return id === undefined ? undefined : this.messages.get(id);
  }

  /** The modal an interaction was answered with (type 9). */
  modalOf(interaction: SentInteraction): Wire {
    return this.interactions.get(interaction.id)?.modal;
  }

  /** An attachment a user uploaded, served at a local URL as Discord's CDN would. */
  addAttachment(filename: string, bytes: Uint8Array, contentType = 'application/octet-stream'): Wire {
    const id = this.snowflake();
    const url = `${this.base}/attachments/${this.options.guild.channelId}/${id}/${encodeURIComponent(filename)}`;
    this.uploads.set(new URL(url).pathname, {
      field: 'upload',
      name: filename,
      contentType,
      bytes: Buffer.from(bytes),
    });
    return { id, filename, size: bytes.byteLength, url, proxy_url: url, content_type: contentType };
  }

  // ── gateway ───────────────────────────────────────────────────────────────────────────

  private onConnection(ws: WebSocket, url: URL): void {
    this.gateway.connections++;
    this.gateway.paths.push(url.pathname);
    this.sockets.add(ws);
    ws.on('close', (code) => {
      this.gateway.closes.push(code);
      this.sockets.delete(ws);
      this.identified.delete(ws);
    });
    const problem =
      url.searchParams.get('v') !== '10'
        ? ([4012, 'Invalid API version'] as const)
        : url.searchParams.get('encoding') !== 'json'
          ? ([4002, 'Decode error'] as const)
          : url.searchParams.has('compress')
            ? ([4002, 'this stand-in speaks uncompressed JSON only'] as const)
            : null;
    if (problem) {
      ws.close(problem[0], problem[1]);
      return;
    }
    this.send(ws, {
      op: OP.hello,
      d: { heartbeat_interval: this.options.heartbeatIntervalMs ?? 41_250 },
      s: null,
      t: null,
    });
    ws.on('message', (data, isBinary) => {
      let payload: Wire;
      try {
        if (isBinary) throw new Error('binary frame');
        payload = JSON.parse(data.toString());
      } catch {
        ws.close(4002, 'Decode error');
        return;
      }
      this.onGatewayPayload(ws, payload);
    });
  }

  private onGatewayPayload(ws: WebSocket, payload: Wire): void {
    switch (payload.op) {
      case OP.heartbeat:
        this.gateway.heartbeats++;
        this.send(ws, { op: OP.heartbeatAck, d: null, s: null, t: null });
        this.gateway.acks++;
        return;
      case OP.identify: {
        const d = payload.d ?? {};
        const refusal = this.identified.has(ws)
          ? ([4005, 'Already authenticated'] as const)
          : d.token !== this.options.token && d.token !== `Bot ${this.options.token}`
            ? ([4004, 'Authentication failed'] as const)
            : typeof d.intents !== 'number'
              ? ([4013, 'Invalid intent(s)'] as const)
              : !d.properties?.os || !d.properties?.browser
                ? ([4002, 'Decode error'] as const)
                : null;
        if (refusal) {
          ws.close(refusal[0], refusal[1]);
          return;
        }
        this.gateway.identifies.push({ ...d, token: '(checked)' });
        const session = { seq: 0, sessionId: randomBytes(16).toString('hex') };
        this.identified.set(ws, session);
        const g = this.options.guild;
        this.dispatchTo(ws, 'READY', {
          v: 10,
          user: {
            id: this.bot.id,
            username: this.bot.username,
            discriminator: '0',
            global_name: null,
            avatar: null,
            bot: true,
          },
          guilds: [{ id: g.id, unavailable: true }],
          session_id: session.sessionId,
          resume_gateway_url: this.gatewayUrl,
          shard: d.shard ?? [0, 1],
          application: { id: this.options.applicationId, flags: 0 },
        });
        this.dispatchTo(ws, 'GUILD_CREATE', this.guildPayload());
        return;
      }
      case OP.resume:
        this.send(ws, { op: OP.invalidSession, d: false, s: null, t: null });
        return;
      case 3:
      case 4:
      case 8:
        return;
      default:
        ws.close(4001, 'Unknown opcode');
    }
  }

  private send(ws: WebSocket, payload: Wire): void {
    ws.send(JSON.stringify(payload));
  }

  private dispatchTo(ws: WebSocket, t: string, d: Wire): void {
    const session = this.identified.get(ws);
    if (!session) return;
    session.seq++;
    this.send(ws, { op: OP.dispatch, t, s: session.seq, d });
  }

  /** Sends a dispatch to every identified connection. */
  dispatch(t: string, d: Wire): void {
    if (this.identified.size === 0) throw new Error('no bot is connected to the gateway');
    for (const ws of this.identified.keys()) this.dispatchTo(ws, t, d);
  }

  private guildPayload(): Wire {
    const g = this.options.guild;
    const roles = [{ id: g.id, name: '@everyone', permissions: '0' }, ...g.roles].map((r, i) => ({
      id: r.id,
      name: r.name,
      permissions: String(r.permissions ?? 0n),
      color: 0,
      colors: { primary_color: 0, secondary_color: null, tertiary_color: null },
      hoist: false,
      icon: null,
      unicode_emoji: null,
      position: i,
      managed: false,
      mentionable: false,
      flags: 0,
    }));
    return {
      id: g.id,
      name: g.name,
      icon: null,
      splash: null,
      discovery_splash: null,
      owner_id: '1200000000000000000',
      afk_channel_id: null,
      afk_timeout: 300,
      verification_level: 0,
      default_message_notifications: 0,
      explicit_content_filter: 0,
      roles,
      emojis: [],
      stickers: [],
      features: [],
      mfa_level: 0,
      system_channel_id: null,
      system_channel_flags: 0,
      rules_channel_id: null,
      vanity_url_code: null,
      description: null,
      banner: null,
      premium_tier: 0,
      preferred_locale: 'en-US',
      public_updates_channel_id: null,
      nsfw_level: 0,
      premium_progress_bar_enabled: false,
      joined_at: new Date().toISOString(),
      large: false,
      unavailable: false,
      member_count: 3,
      voice_states: [],
      members: [],
      channels: [this.channelPayload()],
      threads: [],
      presences: [],
      stage_instances: [],
      guild_scheduled_events: [],
      soundboard_sounds: [],
    };
  }

  private channelPayload(): Wire {
    const g = this.options.guild;
    return {
      id: g.channelId,
      type: 0,
      guild_id: g.id,
      name: 'general',
      position: 0,
      permission_overwrites: [],
      nsfw: false,
      parent_id: null,
      topic: null,
      last_message_id: null,
      rate_limit_per_user: 0,
      flags: 0,
    };
  }

  // ── interactions a user causes ────────────────────────────────────────────────────────

  private memberPayload(who: Person): Wire {
    return {
      user: {
        id: who.id,
        username: who.username,
        global_name: who.username,
        discriminator: '0',
        avatar: null,
      },
      roles: who.roles ?? [],
      joined_at: '2025-01-01T00:00:00.000Z',
      premium_since: null,
      nick: null,
      avatar: null,
      deaf: false,
      mute: false,
      flags: 0,
      pending: false,
      permissions: String(who.permissions ?? 0n),
      communication_disabled_until: null,
    };
  }

  private sendInteraction(
    type: number,
    data: Wire,
    who: Person,
    extra: { limit?: number; message?: Wire } = {},
  ) {
    const g = this.options.guild;
    const limit = extra.limit ?? DEFAULT_ATTACHMENT_LIMIT;
    const state: InteractionState = {
      id: this.snowflake(),
      token: `aW50ZXJhY3Rpb24${randomBytes(48).toString('base64url')}`,
      payload: undefined,
      sentAt: Date.now(),
      createdAt: this.now(),
      limit,
      acked: false,
      ...(extra.message ? { sourceMessageId: extra.message.id } : {}),
    };
    state.payload = {
      id: state.id,
      application_id: this.options.applicationId,
      type,
      data,
      guild: { id: g.id, locale: 'en-US', features: [] },
      guild_id: g.id,
      channel: { ...this.channelPayload(), permissions: '2251799813685247' },
      channel_id: g.channelId,
      member: this.memberPayload(who),
      token: state.token,
      version: 1,
      app_permissions: '2251799813685247',
      locale: 'en-US',
      guild_locale: 'en-US',
      entitlements: [],
      authorizing_integration_owners: { '0': g.id },
      context: 0,
      attachment_size_limit: limit,
      ...(extra.message ? { message: extra.message } : {}),
    };
    this.interactions.set(state.id, state);
    this.dispatch('INTERACTION_CREATE', state.payload);
    return {
      id: state.id,
      token: state.token,
      payload: state.payload,
      sentAt: state.sentAt,
    } as SentInteraction;
  }

  /** The registered definition of a command (guild commands first), to type the options as Discord does. */
  private definition(name: string): Wire {
    for (const list of this.commands.values()) {
      const found = list.find((c: Wire) => c.name === name);
      if (found) return found;
    }
    throw new Error(`/${name} is not registered with the stand-in; register the commands first`);
  }

  private typedOptions(defs: Wire[] | undefined, values: Record<string, Wire>, focused?: string): Wire[] {
    const out: Wire[] = [];
    for (const [name, value] of Object.entries(values)) {
      const def = (defs ?? []).find((o: Wire) => o.name === name);
      if (!def) throw new Error(`option '${name}' is not in the command's definition`);
      if (def.type === OPTION_TYPE.attachment) out.push({ name, type: def.type, value: value.id });
      else out.push({ name, type: def.type, value, ...(name === focused ? { focused: true } : {}) });
    }
    for (const def of defs ?? [])
      if (def.required && !(def.name in values) && focused === undefined)
        throw new Error(`Discord's client would not send /… without its required option '${def.name}'`);
    return out;
  }

  private commandData(
    name: string,
    values: Record<string, Wire>,
    subcommand?: string,
    focused?: string,
  ): Wire {
    const def = this.definition(name);
    let options: Wire[];
    if (subcommand) {
      const sub = (def.options ?? []).find(
        (o: Wire) => o.name === subcommand && o.type === OPTION_TYPE.subcommand,
      );
      if (!sub) throw new Error(`/${name} has no subcommand ${subcommand}`);
      options = [
        {
          name: subcommand,
          type: OPTION_TYPE.subcommand,
          options: this.typedOptions(sub.options, values, focused),
        },
      ];
    } else options = this.typedOptions(def.options, values, focused);
    const attachments = Object.values(values).filter((v) => typeof v === 'object' && v?.url);
    return {
      id: def.id,
      name,
      type: 1,
      ...(def.guild_id ? { guild_id: def.guild_id } : {}),
      options,
      ...(attachments.length
        ? { resolved: { attachments: Object.fromEntries(attachments.map((a) => [a.id, a])) } }
        : {}),
    };
  }

  /** A user runs a slash command; option values are typed from the registered definition. */
  command(
    who: Person,
    name: string,
    values: Record<string, Wire> = {},
    extra: { subcommand?: string; attachmentSizeLimit?: number } = {},
  ): SentInteraction {
    return this.sendInteraction(INTERACTION.command, this.commandData(name, values, extra.subcommand), who, {
      limit: extra.attachmentSizeLimit,
    });
  }

  /** A user types in an option that has autocomplete; `focused` is the one being typed. */
  autocomplete(
    who: Person,
    name: string,
    values: Record<string, Wire>,
    focused: string,
    subcommand?: string,
  ): SentInteraction {
    return this.sendInteraction(
      INTERACTION.autocomplete,
      this.commandData(name, values, subcommand, focused),
      who,
    );
  }

  private findComponent(message: Wire, customId: string): Wire {
    for (const row of message.components ?? [])
      for (const c of row.components ?? []) if (c.custom_id === customId) return c;
    throw new Error(`the message has no component '${customId}'`);
  }

  /** A user clicks a button on a stored message. */
  click(
    who: Person,
    messageId: string,
    customId: string,
    extra: { attachmentSizeLimit?: number } = {},
  ): SentInteraction {
    const message = this.messages.get(messageId)?.message;
    if (!message) throw new Error(`no message ${messageId}`);
    const button = this.findComponent(message, customId);
    if (button.type !== 2) throw new Error(`'${customId}' is not a button`);
    if (button.disabled) throw new Error(`'${customId}' is disabled; Discord's client would not send it`);
    return this.sendInteraction(INTERACTION.component, { custom_id: customId, component_type: 2 }, who, {
      message,
      limit: extra.attachmentSizeLimit,
    });
  }

  /** A user picks options of a select on a stored message. */
  select(who: Person, messageId: string, customId: string, values: string[]): SentInteraction {
    const message = this.messages.get(messageId)?.message;
    if (!message) throw new Error(`no message ${messageId}`);
    const select = this.findComponent(message, customId);
    if (select.type !== 3) throw new Error(`'${customId}' is not a string select`);
    for (const v of values)
      if (!select.options.some((o: Wire) => o.value === v))
        throw new Error(`'${v}' is not an option of '${customId}'`);
    return this.sendInteraction(
      INTERACTION.component,
      { custom_id: customId, component_type: 3, values },
      who,
      {
        message,
      },
    );
  }

  /** A user submits the modal an interaction was answered with. */
  submitModal(who: Person, opener: SentInteraction, values: Record<string, string>): SentInteraction {
    const state = this.interactions.get(opener.id);
    const modal = state?.modal;
    if (!modal) throw new Error('that interaction was not answered with a modal');
    const components = modal.components.map((c: Wire) => {
      const input = c.type === 18 ? c.component : c.components?.[0];
      if (input?.type !== 4) throw new Error('only text inputs are supported in modals');
      if (!(input.custom_id in values) && input.required !== false)
        throw new Error(`'${input.custom_id}' is required`);
      const field = {
        type: 4,
        id: input.id ?? 1,
        custom_id: input.custom_id,
        value: values[input.custom_id] ?? '',
      };
      return c.type === 18 ? { type: 18, id: c.id ?? 2, component: field } : { type: 1, components: [field] };
    });
    const message = state.sourceMessageId ? this.messages.get(state.sourceMessageId)?.message : undefined;
    return this.sendInteraction(INTERACTION.modal, { custom_id: modal.custom_id, components }, who, {
      ...(message ? { message } : {}),
    });
  }

  // ── REST ──────────────────────────────────────────────────────────────────────────────

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.base);
    const raw = await new Promise<Buffer>((resolve) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => resolve(Buffer.concat(chunks)));
    });
    if (req.method === 'GET' && url.pathname.startsWith('/attachments/')) {
      const file = this.uploads.get(url.pathname) ?? this.findMessageFile(url.pathname);
      if (!file) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': file.contentType, 'content-length': file.bytes.byteLength });
      res.end(file.bytes);
      return;
    }
    const call: RecordedCall = {
      method: req.method ?? 'GET',
      route: decodeURIComponent(url.pathname.replace(/^\/api\/v10/, '')),
      query: Object.fromEntries(url.searchParams),
      body: undefined,
      files: [],
      authorized: req.headers.authorization === `Bot ${this.options.token}`,
      status: 0,
      response: undefined,
      at: Date.now(),
    };
    let status = 200;
    let response: Wire;
    try {
      if (!url.pathname.startsWith('/api/v10/'))
        throw new HttpError(404, { message: '404: Not Found', code: 0 });
      await this.readBody(req, raw, call);
      if (req.headers.authorization !== undefined && !call.authorized)
        throw new HttpError(401, { message: '401: Unauthorized', code: 0 });
      const result = this.route(call);
      status = result.status;
      response = result.body;
    } catch (e) {
      if (!(e instanceof HttpError)) throw e;
      status = e.status;
      response = e.body;
    }
    call.status = status;
    call.response = response;
    this.calls.push(call);
    this.emit('call', call);
    if (response === undefined) res.writeHead(status).end();
    else res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(response));
  }

  private findMessageFile(path: string): RecordedFile | undefined {
    for (const m of this.messages.values()) for (const [p, f] of m.files) if (p === path) return f;
    return undefined;
  }

  private async readBody(req: IncomingMessage, raw: Buffer, call: RecordedCall): Promise<void> {
    const type = req.headers['content-type'] ?? '';
    if (raw.byteLength === 0) return;
    if (type.startsWith('application/json')) {
      call.body = JSON.parse(raw.toString('utf8'));
      return;
    }
    if (!type.startsWith('multipart/form-data'))
      throw new HttpError(400, { message: 'Unsupported content type', code: 0 });
    const form = await new Request('http://stand-in/', {
      method: 'POST',
      headers: { 'content-type': type },
      body: raw,
    }).formData();
    for (const [field, value] of form.entries()) {
      if (field === 'payload_json' && typeof value === 'string') call.body = JSON.parse(value);
      else if (typeof value !== 'string' && /^files\[\d+\]$/.test(field)) {
        call.files.push({
          field,
          name: value.name,
          contentType: value.type,
          bytes: Buffer.from(await value.arrayBuffer()),
        });
      } else throw invalidForm(`unexpected form field '${field}'`);
    }
  }

  private needAuth(call: RecordedCall): void {
    if (!call.authorized) throw new HttpError(401, { message: '401: Unauthorized', code: 0 });
  }

  private route(call: RecordedCall): { status: number; body?: Wire } {
    const { method, route } = call;
    const app = this.options.applicationId;
    if (method === 'GET' && route === '/gateway/bot') {
      this.needAuth(call);
      return {
        status: 200,
        body: {
          url: this.gatewayUrl,
          shards: 1,
          session_start_limit: { total: 1000, remaining: 999, reset_after: 14_400_000, max_concurrency: 1 },
        },
      };
    }
    if (method === 'GET' && route === '/gateway') return { status: 200, body: { url: this.gatewayUrl } };
    const commands = /^\/applications\/(\d+)\/(?:guilds\/(\d+)\/)?commands$/.exec(route);
    if (commands) {
      const m = commands;
      this.needAuth(call);
      if (m[1] !== app) throw new HttpError(403, { message: 'Missing Access', code: 50001 });
      const scope = m[2] ?? 'global';
      if (method === 'GET') return { status: 200, body: this.commands.get(scope) ?? [] };
      if (method === 'PUT') return { status: 200, body: this.putCommands(scope, m[2], call.body) };
    }
    const callback = /^\/interactions\/(\d+)\/([^/]+)\/callback$/.exec(route);
    if (method === 'POST' && callback) return this.callback(callback[1], callback[2], call);
    const webhook = /^\/webhooks\/(\d+)\/([^/]+)(?:\/messages\/([^/]+))?$/.exec(route);
    if (webhook) {
      const m = webhook;
      if (m[1] !== app) throw new HttpError(404, { message: 'Unknown Webhook', code: 10015 });
      return this.webhook(method, m[2], m[3], call);
    }
    const channel = /^\/channels\/(\d+)\/messages$/.exec(route);
    if (method === 'POST' && channel) {
      const m = channel;
      this.needAuth(call);
      if (m[1] !== this.options.guild.channelId)
        throw new HttpError(404, { message: 'Unknown Channel', code: 10003 });
      const stored = this.createMessage(m[1], call, { type: 0, limit: DEFAULT_ATTACHMENT_LIMIT });
      return { status: 200, body: stored.message };
    }
    throw new HttpError(404, { message: '404: Not Found', code: 0 });
  }

  private putCommands(scope: string, guildId: string | undefined, body: Wire): Wire[] {
    if (!Array.isArray(body)) throw invalidForm('expected an array of commands');
    if (body.length > 100) throw invalidForm('at most 100 commands');
    const NAME = /^[-_\p{Ll}\p{Lo}\p{N}]{1,32}$/u;
    const checkOptions = (options: Wire[] | undefined, where: string) => {
      if (!options) return;
      if (options.length > 25) throw invalidForm(`${where}: more than 25 options`);
      let optionalSeen = false;
      for (const o of options) {
        if (!NAME.test(o.name)) throw invalidForm(`${where}: bad option name '${o.name}'`);
        if (typeof o.description !== 'string' || o.description.length < 1 || o.description.length > 100)
          throw invalidForm(`${where}.${o.name}: description must be 1–100 characters`);
        if (o.type === OPTION_TYPE.subcommand) {
          checkOptions(o.options, `${where}.${o.name}`);
          continue;
        }
        if (o.required && optionalSeen) throw invalidForm(`${where}.${o.name}: required options come first`);
        if (!o.required) optionalSeen = true;
        if (o.choices && (o.choices.length > 25 || o.autocomplete))
          throw invalidForm(`${where}.${o.name}: at most 25 choices, and not with autocomplete`);
      }
    };
    for (const c of body) {
      if (!NAME.test(c.name)) throw invalidForm(`bad command name '${c.name}'`);
      if (typeof c.description !== 'string' || c.description.length < 1 || c.description.length > 100)
        throw invalidForm(`/${c.name}: description must be 1–100 characters`);
      checkOptions(c.options, `/${c.name}`);
    }
    const stored = body.map((c: Wire) => ({
      ...c,
      id: this.snowflake(),
      application_id: this.options.applicationId,
      version: this.snowflake(),
      type: c.type ?? 1,
      ...(guildId ? { guild_id: guildId } : {}),
    }));
    this.commands.set(scope, stored);
    return stored;
  }

  private callback(id: string, token: string, call: RecordedCall): { status: number; body?: Wire } {
    const state = this.interactions.get(id);
    if (!state || state.token !== token)
      throw new HttpError(404, { message: 'Unknown interaction', code: 10062 });
    if (Date.now() - state.sentAt > (this.options.ackWindowMs ?? 3000))
      throw new HttpError(404, { message: 'Unknown interaction', code: 10062 });
    if (state.acked)
      throw new HttpError(400, { message: 'Interaction has already been acknowledged.', code: 40060 });
    const body = call.body ?? {};
    const kind = state.payload.type;
    const data = body.data ?? {};
    let message: Wire;
    switch (body.type) {
      case CALLBACK.message:
      case CALLBACK.deferredMessage: {
        if (kind === INTERACTION.autocomplete) throw invalidForm('autocomplete takes only type 8');
        const ephemeral = ((data.flags ?? 0) & 64) !== 0;
        const flags = (ephemeral ? 64 : 0) | (body.type === CALLBACK.deferredMessage ? 128 : 0);
        const fake: RecordedCall = { ...call, body: body.type === CALLBACK.message ? data : {} };
        const stored = this.createMessage(this.options.guild.channelId, fake, {
          type: kind === INTERACTION.command ? 20 : 19,
          flags,
          limit: state.limit,
          interaction: state,
        });
        state.originalId = stored.message.id;
        message = stored.message;
        break;
      }
      case CALLBACK.deferredUpdate:
      case CALLBACK.update: {
        if (kind !== INTERACTION.component && !(kind === INTERACTION.modal && state.sourceMessageId))
          throw invalidForm('only a component (or a modal from one) can update its message');
        const stored = this.messages.get(state.sourceMessageId!);
        if (!stored) throw new HttpError(404, { message: 'Unknown Message', code: 10008 });
        if (body.type === CALLBACK.update) this.applyBody(stored, { ...call, body: data }, state.limit);
        state.originalId = stored.message.id;
        message = stored.message;
        break;
      }
      case CALLBACK.autocomplete: {
        if (kind !== INTERACTION.autocomplete) throw invalidForm('type 8 answers autocomplete only');
        const choices = data.choices ?? [];
        if (choices.length > 25) throw invalidForm('at most 25 choices');
        for (const c of choices)
          if (String(c.name).length > 100 || String(c.value).length > 100 || String(c.name).length < 1)
            throw invalidForm('choice names and values are 1–100 characters');
        break;
      }
      case CALLBACK.modal: {
        if (kind === INTERACTION.autocomplete || kind === INTERACTION.modal)
          throw invalidForm('no modal here');
        if (!data.custom_id || data.custom_id.length > 100)
          throw invalidForm('modal custom_id is 1–100 characters');
        if (!data.title || data.title.length > 45) throw invalidForm('modal title is 1–45 characters');
        if (!Array.isArray(data.components) || data.components.length < 1 || data.components.length > 5)
          throw invalidForm('a modal has 1–5 components');
        state.modal = data;
        break;
      }
      default:
        throw invalidForm(`unknown callback type ${body.type}`);
    }
    state.acked = true;
    if (call.query.with_response !== 'true') return { status: 204 };
    return {
      status: 200,
      body: {
        interaction: {
          id: state.id,
          type: kind,
          activity_instance_id: null,
          response_message_id: message?.id ?? null,
        },
        resource: { type: body.type, ...(message ? { message } : {}) },
      },
    };
  }

  private webhook(method: string, token: string, messageId: string | undefined, call: RecordedCall) {
    const state = [...this.interactions.values()].find((s) => s.token === token);
    if (!state || this.now() - state.createdAt > (this.options.tokenLifetimeMs ?? 15 * 60_000))
      throw new HttpError(401, { message: 'Invalid Webhook Token', code: 50027 });
    if (!state.acked) throw new HttpError(404, { message: 'Unknown Webhook', code: 10015 });
    if (messageId === undefined) {
      if (method !== 'POST') throw new HttpError(405, { message: '405: Method Not Allowed', code: 0 });
      const ephemeral = ((call.body?.flags ?? 0) & 64) !== 0;
      const stored = this.createMessage(this.options.guild.channelId, call, {
        type: 0,
        flags: ephemeral ? 64 : 0,
        limit: state.limit,
      });
      return { status: 200, body: stored.message };
    }
    const id = messageId === '@original' ? state.originalId : messageId;
    const stored = id === undefined ? undefined : this.messages.get(id);
    if (!stored) throw new HttpError(404, { message: 'Unknown Message', code: 10008 });
    if (method === 'GET') return { status: 200, body: stored.message };
    if (method === 'DELETE') {
      this.messages.delete(stored.message.id);
      return { status: 204 };
    }
    if (method !== 'PATCH') throw new HttpError(405, { message: '405: Method Not Allowed', code: 0 });
    this.applyBody(stored, call, state.limit);
    stored.message.flags &= ~128;
    return { status: 200, body: stored.message };
  }

  private createMessage(
    channelId: string,
    call: RecordedCall,
    how: { type: number; flags?: number; limit: number; interaction?: InteractionState },
  ): StoredMessage {
    const id = this.snowflake();
    const stored: StoredMessage = {
      message: {
        id,
        type: how.type,
        channel_id: channelId,
        guild_id: this.options.guild.id,
        author: {
          id: this.bot.id,
          username: this.bot.username,
          discriminator: '0',
          global_name: null,
          avatar: null,
          bot: true,
        },
        content: '',
        embeds: [],
        components: [],
        attachments: [],
        mentions: [],
        mention_roles: [],
        mention_everyone: false,
        pinned: false,
        tts: false,
        timestamp: new Date().toISOString(),
        edited_timestamp: null,
        flags: how.flags ?? 0,
        ...(how.interaction
          ? {
              webhook_id: this.options.applicationId,
              application_id: this.options.applicationId,
              interaction_metadata: {
                id: how.interaction.id,
                type: how.interaction.payload.type,
                user: how.interaction.payload.member.user,
                authorizing_integration_owners: { '0': this.options.guild.id },
              },
            }
          : {}),
      },
      files: new Map(),
    };
    this.applyBody(stored, call, how.limit);
    stored.message.edited_timestamp = null;
    this.messages.set(id, stored);
    return stored;
  }

  /** Applies a message create/edit body, checking it as Discord does. */
  private applyBody(stored: StoredMessage, call: RecordedCall, limit: number): void {
    const body = call.body ?? {};
    checkMessage(body);
    for (const f of call.files)
      if (f.bytes.byteLength > limit)
        throw new HttpError(413, { message: 'Request entity too large', code: 40005 });
    const m = stored.message;
    if ('content' in body) m.content = body.content ?? '';
    if ('embeds' in body) m.embeds = body.embeds ?? [];
    if ('components' in body) m.components = body.components ?? [];
    if ('attachments' in body || call.files.length > 0) {
      const listed: Wire[] = body.attachments ?? [];
      const kept = m.attachments.filter((a: Wire) => listed.some((l) => String(l.id) === a.id));
      const added = call.files.map((f) => {
        const index = f.field.slice('files['.length, -1);
        const meta = listed.find((l) => String(l.id) === index) ?? {};
        const attachmentId = this.snowflake();
        const path = `/attachments/${m.channel_id}/${attachmentId}/${encodeURIComponent(f.name)}`;
        stored.files.set(path, f);
        return {
          id: attachmentId,
          filename: f.name,
          size: f.bytes.byteLength,
          url: `${this.base}${path}`,
          proxy_url: `${this.base}${path}`,
          content_type: f.contentType,
          ...(meta.description ? { description: meta.description } : {}),
        };
      });
      if (kept.length + added.length > 10) throw invalidForm('at most 10 attachments');
      m.attachments = [...kept, ...added];
    }
    m.edited_timestamp = new Date().toISOString();
  }

  /** The bytes of a message's attachment, by its file name. */
  attachmentBytes(stored: StoredMessage, filename: string): Buffer | undefined {
    const a = stored.message.attachments.find((x: Wire) => x.filename === filename);
    return a ? stored.files.get(new URL(a.url).pathname)?.bytes : undefined;
  }

  private snowflake(): string {
    this.counter = (this.counter + 1n) & 0xfffn;
    return String(((BigInt(Date.now()) - DISCORD_EPOCH) << 22n) | (1n << 17n) | this.counter);
  }
}

/** Discord's limits on a message body (https://discord.com/developers/docs/resources/message). */
function checkMessage(body: Wire): void {
  if (typeof body.content === 'string' && body.content.length > 2000)
    throw invalidForm('content over 2000 characters');
  const embeds: Wire[] = body.embeds ?? [];
  if (embeds.length > 10) throw invalidForm('more than 10 embeds');
  let total = 0;
  for (const e of embeds) {
    const fields: Wire[] = e.fields ?? [];
    if ((e.title ?? '').length > 256) throw invalidForm('embed title over 256');
    if ((e.description ?? '').length > 4096) throw invalidForm('embed description over 4096');
    if ((e.footer?.text ?? '').length > 2048) throw invalidForm('embed footer over 2048');
    if (fields.length > 25) throw invalidForm('more than 25 embed fields');
    for (const f of fields) {
      if (!f.name || f.name.length > 256) throw invalidForm('embed field name must be 1–256');
      if (!f.value || f.value.length > 1024) throw invalidForm('embed field value must be 1–1024');
    }
    total +=
      (e.title ?? '').length +
      (e.description ?? '').length +
      (e.footer?.text ?? '').length +
      fields.reduce((n: number, f: Wire) => n + f.name.length + f.value.length, 0);
  }
  if (total > 6000) throw invalidForm('embeds over 6000 characters in all');
  const rows: Wire[] = body.components ?? [];
  if (rows.length > 5) throw invalidForm('more than 5 action rows');
  const ids = new Set<string>();
  for (const row of rows) {
    if (row.type !== 1) throw invalidForm('top-level components must be action rows');
    const parts: Wire[] = row.components ?? [];
    const selects = parts.filter((c) => c.type === 3).length;
    if (parts.length === 0 || parts.length > 5 || (selects > 0 && parts.length > 1))
      throw invalidForm('a row holds 1–5 buttons or one select');
    for (const c of parts) {
      if (c.style !== 5) {
        if (typeof c.custom_id !== 'string' || c.custom_id.length < 1 || c.custom_id.length > 100)
          throw invalidForm('custom_id must be 1–100 characters');
        if (ids.has(c.custom_id)) throw invalidForm(`custom_id '${c.custom_id}' used twice`);
        ids.add(c.custom_id);
      }
      if (c.type === 2 && (c.label ?? '').length > 80) throw invalidForm('button label over 80');
      if (c.type === 3) {
        const options: Wire[] = c.options ?? [];
        if (options.length < 1 || options.length > 25) throw invalidForm('a select has 1–25 options');
        if ((c.placeholder ?? '').length > 150) throw invalidForm('placeholder over 150');
        for (const o of options)
          if (
            !o.label ||
            o.label.length > 100 ||
            !o.value ||
            o.value.length > 100 ||
            (o.description ?? '').length > 100
          )
            throw invalidForm('select option label/value/description must be 1–100');
      }
    }
  }
}
