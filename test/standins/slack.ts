// A stand-in for Slack's servers, speaking their protocols, for the Slack adapter's tests:
//   - the Web API under /api/ (form-encoded or JSON requests, Bearer tokens, { ok, error }
//     answers): auth.test, chat.postMessage / update / postEphemeral, the files.uploadV2 flow
//     (files.getUploadURLExternal → POST of the bytes to the returned upload_url →
//     files.completeUploadExternal), users.info, views.open, apps.connections.open;
//     it keeps the channels' messages, the uploaded bytes and every call, and answers a
//     second message in a channel within a second with 429 and Retry-After, as Slack does;
//   - response_url endpoints that post, replace and delete ephemeral and channel messages;
//   - Socket Mode: the WebSocket URL apps.connections.open hands out (RFC 6455, hello,
//     envelopes, acks by envelope_id, ping/pong);
//   - the other direction: signed HTTP requests to an app's /slack/events and the payloads
//     Slack sends (slash commands, block_actions built from the buttons a message really has,
//     view_submission).
// Nothing of the bot is mocked: only Slack is.

import { createHash, createHmac, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface StandInOptions {
  botToken: string;
  appToken?: string;
  signingSecret: string;
  /** channels the bot is a member of; posting elsewhere fails with not_in_channel */
  channels: string[];
  /** users.info reports these as workspace admins */
  admins?: string[];
  teamId?: string;
}

export interface ApiCall {
  method: string;
  args: Record<string, unknown>;
  at: number;
}

export interface StoredFile {
  id: string;
  filename: string;
  title?: string;
  altText?: string;
  length: number;
  bytes?: Buffer;
  mimetype?: string;
}

export interface SlackBlock {
  type: string;
  [key: string]: unknown;
}

export interface StoredMessage {
  channel: string;
  ts: string;
  threadTs?: string;
  text: string;
  blocks: SlackBlock[];
  files: StoredFile[];
  /** set for ephemeral messages: only this user sees it */
  ephemeralTo?: string;
  deleted?: boolean;
  /** every version, oldest first */
  versions: { text: string; blocks: SlackBlock[]; at: number }[];
}

export interface OpenedView {
  id: string;
  view: Record<string, unknown>;
  triggerId: string;
}

interface ResponseUrl {
  channel: string;
  user: string;
  /** the message an action came from */
  source?: StoredMessage;
  uses: number;
}

interface Trigger {
  user: string;
  at: number;
}

const TEAM_DOMAIN = 'standin';
const APP_ID = 'A0STANDIN';
const BOT_USER = 'U0BOT';
const BOT_ID = 'B0BOT';
const VERIFICATION_TOKEN = 'legacy-verification-token';
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/** Slack allows about one message a second per channel; a little slack for network jitter. */
const CHANNEL_MESSAGE_MS = 950;

/** v0=HMAC-SHA256 of `v0:{timestamp}:{body}` with the signing secret, as Slack signs requests. */
export function signSlackRequest(secret: string, timestamp: number, body: string): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
}

export class SlackStandIn {
  readonly calls: ApiCall[] = [];
  readonly messages: StoredMessage[] = [];
  readonly files = new Map<string, StoredFile>();
  readonly views: OpenedView[] = [];
  /** bodies POSTed to response_urls, in order */
  readonly responses: { url: string; body: Record<string, unknown>; at: number }[] = [];
  /** Socket Mode acks the app sent, by envelope id */
  readonly acks = new Map<string, Record<string, unknown>>();
  /** downloads of users' files (GET url_private_download), with the token they carried */
  readonly downloads: { id: string; token: string }[] = [];
  /** messages answered with 429 because the channel's rate was exceeded */
  rateLimited = 0;
  url = '';

  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly responseUrls = new Map<string, ResponseUrl>();
  private readonly triggers = new Map<string, Trigger>();
  private readonly lastMessageAt = new Map<string, number>();
  private readonly ackWaiters = new Map<string, (payload: Record<string, unknown>) => void>();
  private readonly links = new Set<Socket>();
  private readonly userFiles = new Map<string, { name: string; bytes: Buffer }>();
  private linkWaiters: (() => void)[] = [];
  private tsCounter = 0;
  private idCounter = 0;

  private constructor(readonly options: StandInOptions) {
    this.server = createServer((req, res) => {
      this.route(req, res).catch((e: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(String(e));
      });
    });
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    this.server.on('upgrade', (req, socket, head) => this.upgrade(req, socket as Socket, head));
  }

  static async start(options: StandInOptions): Promise<SlackStandIn> {
    const standIn = new SlackStandIn(options);
    await new Promise<void>((resolve) => standIn.server.listen(0, '127.0.0.1', resolve));
    standIn.url = `http://127.0.0.1:${(standIn.server.address() as AddressInfo).port}`;
    return standIn;
  }

  get apiUrl(): string {
    return `${this.url}/api/`;
  }

  get teamId(): string {
    return this.options.teamId ?? 'T0STANDIN';
  }

  get botUserId(): string {
    return BOT_USER;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    for (const s of this.links) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  callsOf(method: string): ApiCall[] {
    return this.calls.filter((c) => c.method === method);
  }

  /** Visible messages of a channel (not deleted), oldest first; ephemeral ones only with `user`. */
  channelMessages(channel: string, user?: string): StoredMessage[] {
    return this.messages.filter(
      (m) => m.channel === channel && !m.deleted && (m.ephemeralTo === undefined || m.ephemeralTo === user),
    );
  }

  /** Polls until `find` returns something, or fails after `timeoutMs`. */
  async waitFor<T>(
    what: string,
    find: () => T | undefined | null | false | Promise<T | undefined | null | false>,
    timeoutMs = 60_000,
  ): Promise<T> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const found = await find();
      if (found) return found;
      if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  // ---------------------------------------------------------------- requests Slack sends

  /** A slash command as Slack posts it (form fields), with a fresh response_url and trigger_id. */
  slashCommand(
    command: string,
    text: string,
    who: { user: string; channel: string },
  ): Record<string, string> {
    return {
      token: VERIFICATION_TOKEN,
      team_id: this.teamId,
      team_domain: TEAM_DOMAIN,
      channel_id: who.channel,
      channel_name: who.channel.toLowerCase(),
      user_id: who.user,
      user_name: who.user.toLowerCase(),
      command,
      // Slack escapes its control characters in what the user typed.
      text: text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;'),
      api_app_id: APP_ID,
      is_enterprise_install: 'false',
      response_url: this.newResponseUrl({ channel: who.channel, user: who.user }),
      trigger_id: this.newTrigger(who.user),
    };
  }

  /**
   * A block_actions payload for pressing the button (or choosing `value` in the select) with
   * this action id on `message`; throws when the message has no such element, as a user could
   * not press it either.
   */
  blockActions(
    message: StoredMessage,
    actionId: string,
    user: string,
    value?: string,
  ): Record<string, unknown> {
    const found = findElement(message.blocks, actionId);
    if (!found) throw new Error(`no element with action_id '${actionId}' on message ${message.ts}`);
    const { element, blockId } = found;
    let action: Record<string, unknown>;
    if (element.type === 'button') {
      action = {
        type: 'button',
        action_id: actionId,
        block_id: blockId,
        text: element.text,
        action_ts: this.nextTs(),
      };
      if (element.value !== undefined) action.value = element.value;
    } else if (element.type === 'static_select') {
      const options = (element.options ?? []) as { value: string; text: unknown }[];
      const option = options.find((o) => o.value === value);
      if (!option) throw new Error(`select '${actionId}' has no option '${value}'`);
      action = {
        type: 'static_select',
        action_id: actionId,
        block_id: blockId,
        selected_option: option,
        placeholder: element.placeholder,
        action_ts: this.nextTs(),
      };
    } else {
      throw new Error(`cannot press a ${String(element.type)}`);
    }
    const ephemeral = message.ephemeralTo !== undefined;
    const payload: Record<string, unknown> = {
      type: 'block_actions',
      user: { id: user, username: user.toLowerCase(), name: user.toLowerCase(), team_id: this.teamId },
      api_app_id: APP_ID,
      token: VERIFICATION_TOKEN,
      container: {
        type: 'message',
        message_ts: message.ts,
        channel_id: message.channel,
        is_ephemeral: ephemeral,
        ...(message.threadTs ? { thread_ts: message.threadTs } : {}),
      },
      trigger_id: this.newTrigger(user),
      team: { id: this.teamId, domain: TEAM_DOMAIN },
      enterprise: null,
      is_enterprise_install: false,
      channel: { id: message.channel, name: message.channel.toLowerCase() },
      state: { values: {} },
      response_url: this.newResponseUrl({ channel: message.channel, user, source: message }),
      actions: [action],
    };
    // Slack leaves the message out for ephemeral containers.
    if (!ephemeral) {
      payload.message = {
        type: 'message',
        user: BOT_USER,
        bot_id: BOT_ID,
        ts: message.ts,
        text: message.text,
        blocks: message.blocks,
        ...(message.threadTs ? { thread_ts: message.threadTs } : {}),
      };
    }
    return payload;
  }

  /**
   * A message shortcut (type message_action) that `user` runs on `message` from its "More actions" menu,
   * as Slack sends it: the message with its files (each with url_private for the bot token to download).
   */
  messageShortcut(message: StoredMessage, callbackId: string, user: string): Record<string, unknown> {
    return {
      type: 'message_action',
      token: VERIFICATION_TOKEN,
      action_ts: this.nextTs(),
      team: { id: this.teamId, domain: TEAM_DOMAIN },
      user: { id: user, username: user.toLowerCase(), name: user.toLowerCase(), team_id: this.teamId },
      channel: { id: message.channel, name: message.channel.toLowerCase() },
      is_enterprise_install: false,
      enterprise: null,
      callback_id: callbackId,
      trigger_id: this.newTrigger(user),
      response_url: this.newResponseUrl({ channel: message.channel, user, source: message }),
      message_ts: message.ts,
      message: {
        type: 'message',
        user: BOT_USER,
        bot_id: BOT_ID,
        ts: message.ts,
        text: message.text,
        ...(message.files.length ? { files: message.files.map((f) => this.fileObject(f)) } : {}),
      },
    };
  }

  /** A user's message with an uploaded file in a channel, as a message shortcut can then be run on. */
  userMessageWithFile(channel: string, user: string, name: string, bytes: Buffer): StoredMessage {
    const shared = this.userFile(name, bytes, user);
    const file: StoredFile = {
      id: String(shared.id),
      filename: name,
      length: bytes.length,
      bytes,
      mimetype: sniffMime(bytes),
    };
    this.files.set(file.id, file);
    const ts = this.nextTs();
    const message: StoredMessage = { channel, ts, text: '', blocks: [], files: [file], versions: [] };
    this.messages.push(message);
    return message;
  }

  private fileObject(f: StoredFile): Record<string, unknown> {
    return {
      id: f.id,
      name: f.filename,
      title: f.title ?? f.filename,
      mimetype: f.mimetype,
      filetype: f.filename.split('.').pop() ?? '',
      size: f.length,
      url_private: `${this.url}/files-pri/${this.teamId}-${f.id}/${f.filename}`,
      url_private_download: `${this.url}/files-pri/${this.teamId}-${f.id}/download/${f.filename}`,
      permalink: `https://${TEAM_DOMAIN}.slack.com/files/${BOT_USER}/${f.id}/${f.filename}`,
    };
  }

  /** A view_submission of an opened modal with these input values (block id → action id → value). */
  viewSubmission(
    opened: OpenedView,
    user: string,
    values: Record<string, Record<string, unknown>>,
  ): Record<string, unknown> {
    return {
      type: 'view_submission',
      team: { id: this.teamId, domain: TEAM_DOMAIN },
      user: { id: user, username: user.toLowerCase(), name: user.toLowerCase(), team_id: this.teamId },
      api_app_id: APP_ID,
      token: VERIFICATION_TOKEN,
      trigger_id: this.newTrigger(user),
      view: {
        ...opened.view,
        id: opened.id,
        team_id: this.teamId,
        app_id: APP_ID,
        bot_id: BOT_ID,
        state: { values },
        hash: `${Date.now()}.hash`,
        root_view_id: opened.id,
        previous_view_id: null,
      },
      response_urls: [],
      is_enterprise_install: false,
      enterprise: null,
    };
  }

  /** A file a user uploaded in a modal's file input, as view_submission describes it; its bytes are served to the bot token. */
  userFile(name: string, bytes: Buffer, user: string): Record<string, unknown> {
    const id = `F${String(++this.idCounter).padStart(8, '0')}`;
    this.userFiles.set(id, { name, bytes });
    const path = `/files-pri/${this.teamId}-${id}`;
    return {
      id,
      created: Math.floor(Date.now() / 1000),
      timestamp: Math.floor(Date.now() / 1000),
      name,
      title: name,
      filetype: name.split('.').pop() ?? '',
      mimetype: 'application/octet-stream',
      size: bytes.length,
      user,
      user_team: this.teamId,
      url_private: `${this.url}${path}/${name}`,
      url_private_download: `${this.url}${path}/download/${name}`,
      permalink: `https://${TEAM_DOMAIN}.slack.com/files/${user}/${id}/${name}`,
    };
  }

  /**
   * POSTs to an app's events URL as Slack does: slash commands form-encoded, interactive
   * payloads as `payload=<json>`, signed with `secret` (the right one unless a test says
   * otherwise) at `timestamp` (now unless a test says otherwise).
   */
  async deliver(
    eventsUrl: string,
    body: Record<string, string> | { payload: Record<string, unknown> },
    sign: { secret?: string; timestamp?: number; signature?: string } = {},
  ): Promise<{ status: number; text: string; ms: number }> {
    const form =
      'payload' in body && typeof body.payload === 'object'
        ? new URLSearchParams({ payload: JSON.stringify(body.payload) }).toString()
        : new URLSearchParams(body as Record<string, string>).toString();
    const timestamp = sign.timestamp ?? Math.floor(Date.now() / 1000);
    const signature =
      sign.signature ?? signSlackRequest(sign.secret ?? this.options.signingSecret, timestamp, form);
    const started = performance.now();
    const res = await fetch(eventsUrl, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-slack-request-timestamp': String(timestamp),
        'x-slack-signature': signature,
        'user-agent': 'Slackbot 1.0 (+https://api.slack.com/robots)',
      },
      body: form,
    });
    const text = await res.text();
    return { status: res.status, text, ms: performance.now() - started };
  }

  /** Socket Mode: sends an envelope to the connected app and waits for its ack. */
  async envelope(
    type: 'slash_commands' | 'interactive',
    payload: Record<string, unknown>,
  ): Promise<{ ack: Record<string, unknown>; ms: number }> {
    const socket = [...this.links][0];
    if (!socket) throw new Error('no Socket Mode connection');
    const envelopeId = randomUUID();
    const started = performance.now();
    const acked = new Promise<Record<string, unknown>>((resolve) => this.ackWaiters.set(envelopeId, resolve));
    sendFrame(
      socket,
      0x1,
      Buffer.from(JSON.stringify({ envelope_id: envelopeId, type, payload, accepts_response_payload: true })),
    );
    const ack = await acked;
    return { ack, ms: performance.now() - started };
  }

  /** Resolves once an app holds a Socket Mode connection. */
  connected(): Promise<void> {
    if (this.links.size > 0) return Promise.resolve();
    return new Promise((resolve) => this.linkWaiters.push(resolve));
  }

  // ---------------------------------------------------------------- routing

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const body = await readBody(req);
    if (req.method === 'POST' && url.pathname.startsWith('/api/')) {
      const method = url.pathname.slice('/api/'.length);
      const args = parseArgs(req.headers['content-type'] ?? '', body);
      this.calls.push({ method, args, at: Date.now() });
      const answer = this.api(method, args, req.headers.authorization ?? '');
      if (answer === 'rate-limited') {
        this.rateLimited++;
        res.writeHead(429, { 'retry-after': '1', 'content-type': 'application/json' });
        res.end(JSON.stringify({ ok: false, error: 'ratelimited' }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify(answer));
      return;
    }
    if (req.method === 'POST' && url.pathname.startsWith('/upload/v1/')) {
      const answer = await this.receiveUpload(url.pathname.slice('/upload/v1/'.length), req, body);
      res.writeHead(answer.status, { 'content-type': 'text/plain' });
      res.end(answer.text);
      return;
    }
    if (req.method === 'GET' && url.pathname.startsWith(`/files-pri/${this.teamId}-`)) {
      const id = url.pathname.slice(`/files-pri/${this.teamId}-`.length).split('/')[0];
      const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
      this.downloads.push({ id, token });
      // Users' uploads and the bot's own are both visible to the bot token.
      const own = this.files.get(id);
      const file =
        this.userFiles.get(id) ?? (own?.bytes ? { name: own.filename, bytes: own.bytes } : undefined);
      // Slack answers a request without the right token with its login page, not the file.
      if (!file || token !== this.options.botToken) {
        res.writeHead(302, {
          location: `https://${TEAM_DOMAIN}.slack.com/?redir=${encodeURIComponent(url.pathname)}`,
        });
        res.end();
        return;
      }
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': String(file.bytes.length),
      });
      res.end(file.bytes);
      return;
    }
    if (req.method === 'POST' && url.pathname.startsWith('/respond/')) {
      const answer = this.respond(url.toString(), body);
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer.body));
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found');
  }

  private api(
    method: string,
    args: Record<string, unknown>,
    authorization: string,
  ): Record<string, unknown> | 'rate-limited' {
    const token = authorization.replace(/^Bearer /, '');
    if (method === 'apps.connections.open') {
      if (!this.options.appToken || token !== this.options.appToken)
        return fail(token.startsWith('xoxb-') ? 'not_allowed_token_type' : 'invalid_auth');
      return { ok: true, url: `${this.url.replace(/^http/, 'ws')}/link/?ticket=${randomUUID()}` };
    }
    if (token !== this.options.botToken) return fail(token === '' ? 'not_authed' : 'invalid_auth');
    switch (method) {
      case 'auth.test':
        return {
          ok: true,
          url: `https://${TEAM_DOMAIN}.slack.com/`,
          team: 'Stand-in',
          user: 'clora',
          team_id: this.teamId,
          user_id: BOT_USER,
          bot_id: BOT_ID,
          is_enterprise_install: false,
        };
      case 'users.info': {
        const id = String(args.user ?? '');
        if (!/^[UW][A-Z0-9]+$/.test(id)) return fail('user_not_found');
        const admin = this.options.admins?.includes(id) ?? false;
        return {
          ok: true,
          user: {
            id,
            team_id: this.teamId,
            name: id.toLowerCase(),
            is_admin: admin,
            is_owner: false,
            is_primary_owner: false,
            is_bot: false,
          },
        };
      }
      case 'chat.postMessage':
        return this.postMessage(args);
      case 'chat.update':
        return this.update(args);
      case 'chat.postEphemeral': {
        const channel = String(args.channel ?? '');
        if (!this.options.channels.includes(channel)) return fail('not_in_channel');
        const blocks = readBlocks(args.blocks);
        if (!blocks.ok) return blocks.failure;
        const m = this.store({
          channel,
          text: String(args.text ?? ''),
          blocks: blocks.blocks,
          ephemeralTo: String(args.user),
        });
        return { ok: true, message_ts: m.ts };
      }
      case 'files.getUploadURLExternal': {
        const length = Number(args.length);
        const filename = String(args.filename ?? '');
        if (filename === '') return fail('invalid_arguments');
        if (!Number.isInteger(length) || length <= 0) return fail('invalid_arguments');
        const id = `F${String(++this.idCounter).padStart(8, '0')}`;
        this.files.set(id, {
          id,
          filename,
          length,
          ...(args.alt_text !== undefined ? { altText: String(args.alt_text) } : {}),
        });
        return { ok: true, upload_url: `${this.url}/upload/v1/${id}`, file_id: id };
      }
      case 'files.completeUploadExternal':
        return this.completeUpload(args);
      case 'views.open':
        return this.openView(args);
      default:
        return fail('unknown_method');
    }
  }

  private paced(channel: string): boolean {
    const now = Date.now();
    const last = this.lastMessageAt.get(channel);
    if (last !== undefined && now - last < CHANNEL_MESSAGE_MS) return false;
    this.lastMessageAt.set(channel, now);
    return true;
  }

  private postMessage(args: Record<string, unknown>): Record<string, unknown> | 'rate-limited' {
    const channel = String(args.channel ?? '');
    if (channel === '') return fail('channel_not_found');
    if (!this.options.channels.includes(channel)) return fail('not_in_channel');
    const blocks = readBlocks(args.blocks);
    if (!blocks.ok) return blocks.failure;
    if (args.text === undefined && blocks.blocks.length === 0) return fail('no_text');
    const threadTs = args.thread_ts === undefined ? undefined : String(args.thread_ts);
    if (threadTs !== undefined && !this.messages.some((m) => m.channel === channel && m.ts === threadTs))
      return fail('thread_not_found');
    if (!this.paced(channel)) return 'rate-limited';
    const m = this.store({ channel, text: String(args.text ?? ''), blocks: blocks.blocks, threadTs });
    return { ok: true, channel, ts: m.ts, message: messageJson(m) };
  }

  private update(args: Record<string, unknown>): Record<string, unknown> {
    const channel = String(args.channel ?? '');
    const m = this.messages.find(
      (x) => x.channel === channel && x.ts === String(args.ts) && x.ephemeralTo === undefined,
    );
    if (!m || m.deleted) return fail('message_not_found');
    const blocks = readBlocks(args.blocks);
    if (!blocks.ok) return blocks.failure;
    if (args.text !== undefined) m.text = String(args.text);
    if (args.blocks !== undefined) m.blocks = blocks.blocks;
    m.versions.push({ text: m.text, blocks: m.blocks, at: Date.now() });
    return { ok: true, channel, ts: m.ts, text: m.text, message: messageJson(m) };
  }

  private async receiveUpload(
    id: string,
    req: IncomingMessage,
    body: Buffer,
  ): Promise<{ status: number; text: string }> {
    const file = this.files.get(id);
    if (!file) return { status: 404, text: 'unknown upload' };
    let bytes = body;
    const type = req.headers['content-type'] ?? '';
    if (type.startsWith('multipart/form-data')) {
      const form = await new Request('http://upload', {
        method: 'POST',
        headers: { 'content-type': type },
        body,
      }).formData();
      const part = [...form.values()].find((v) => typeof v !== 'string');
      if (part === undefined || typeof part === 'string') return { status: 400, text: 'no file part' };
      bytes = Buffer.from(await part.arrayBuffer());
    }
    if (bytes.length !== file.length)
      return { status: 400, text: `length ${bytes.length} != declared ${file.length}` };
    file.bytes = bytes;
    file.mimetype = sniffMime(bytes);
    return { status: 200, text: `OK - ${bytes.length}` };
  }

  private completeUpload(args: Record<string, unknown>): Record<string, unknown> | 'rate-limited' {
    const list = parseJson(args.files);
    if (!Array.isArray(list) || list.length === 0) return fail('invalid_arguments');
    const files: StoredFile[] = [];
    for (const entry of list as { id?: string; title?: string }[]) {
      const file = this.files.get(String(entry.id));
      if (!file) return fail('file_not_found');
      if (!file.bytes) return fail('file_upload_incomplete');
      if (entry.title !== undefined) file.title = entry.title;
      files.push(file);
    }
    const channel = args.channel_id === undefined ? undefined : String(args.channel_id);
    if (channel !== undefined) {
      if (!this.options.channels.includes(channel)) return fail('not_in_channel');
      const comment = args.initial_comment === undefined ? undefined : String(args.initial_comment);
      // Slack ignores blocks when there is an initial comment.
      const blocks = comment === undefined ? readBlocks(args.blocks) : readBlocks(undefined);
      if (!blocks.ok) return blocks.failure;
      const threadTs = args.thread_ts === undefined ? undefined : String(args.thread_ts);
      if (threadTs !== undefined && !this.messages.some((m) => m.channel === channel && m.ts === threadTs))
        return fail('thread_not_found');
      if (!this.paced(channel)) return 'rate-limited';
      this.store({ channel, text: comment ?? '', blocks: blocks.blocks, threadTs, files });
    }
    return {
      ok: true,
      files: files.map((f) => ({
        id: f.id,
        name: f.filename,
        title: f.title ?? f.filename,
        mimetype: f.mimetype,
        size: f.length,
        url_private: `${this.url}/files-pri/${this.teamId}-${f.id}/${f.filename}`,
        permalink: `https://${TEAM_DOMAIN}.slack.com/files/${BOT_USER}/${f.id}/${f.filename}`,
      })),
    };
  }

  private openView(args: Record<string, unknown>): Record<string, unknown> {
    const triggerId = String(args.trigger_id ?? '');
    const trigger = this.triggers.get(triggerId);
    if (!trigger) return fail('invalid_trigger_id');
    if (Date.now() - trigger.at > 3000) return fail('expired_trigger_id');
    this.triggers.delete(triggerId);
    const view = parseJson(args.view) as Record<string, unknown> | undefined;
    if (view?.type !== 'modal') return fail('invalid_arguments');
    const title = (view.title as { text?: string } | undefined)?.text ?? '';
    if (title.length === 0 || title.length > 24) return fail('invalid_arguments');
    const blocks = readBlocks(view.blocks);
    if (!blocks.ok) return blocks.failure;
    const id = `V${String(++this.idCounter).padStart(8, '0')}`;
    this.views.push({ id, view, triggerId });
    return { ok: true, view: { id, ...view, state: { values: {} } } };
  }

  private respond(url: string, body: Buffer): { status: number; body: Record<string, unknown> } {
    const target = this.responseUrls.get(url);
    if (!target) return { status: 404, body: { ok: false, error: 'expired_url' } };
    if (++target.uses > 5) return { status: 404, body: { ok: false, error: 'used_url' } };
    const message = parseJson(body.toString('utf8')) as Record<string, unknown> | undefined;
    if (!message) return { status: 400, body: { ok: false, error: 'invalid_payload' } };
    this.responses.push({ url, body: message, at: Date.now() });
    const blocks = readBlocks(message.blocks);
    if (!blocks.ok) return { status: 400, body: blocks.failure };
    const text = String(message.text ?? '');
    const source = target.source;
    if (message.delete_original === true) {
      if (source) source.deleted = true;
      return { status: 200, body: { ok: true } };
    }
    if (message.replace_original === true && source) {
      source.text = text;
      source.blocks = blocks.blocks;
      source.versions.push({ text, blocks: blocks.blocks, at: Date.now() });
      return { status: 200, body: { ok: true } };
    }
    const inChannel = message.response_type === 'in_channel';
    this.store({
      channel: target.channel,
      text,
      blocks: blocks.blocks,
      ...(inChannel ? {} : { ephemeralTo: target.user }),
    });
    return { status: 200, body: { ok: true } };
  }

  // ---------------------------------------------------------------- Socket Mode (RFC 6455)

  private upgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const key = req.headers['sec-websocket-key'];
    if (!req.url?.startsWith('/link/') || typeof key !== 'string') {
      socket.end('HTTP/1.1 400 Bad Request\r\n\r\n');
      return;
    }
    const accept = createHash('sha1')
      .update(key + WS_GUID)
      .digest('base64');
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${accept}\r\n\r\n`,
    );
    this.links.add(socket);
    let pending = head;
    let fragments: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        const frame = readFrame(pending);
        if (!frame) break;
        pending = pending.subarray(frame.size);
        if (frame.opcode === 0x9) sendFrame(socket, 0xa, frame.payload);
        else if (frame.opcode === 0x8) {
          sendFrame(socket, 0x8, frame.payload.subarray(0, 2));
          socket.end();
        } else if (frame.opcode === 0x1 || frame.opcode === 0x0) {
          fragments.push(frame.payload);
          if (frame.fin) {
            this.onSocketText(Buffer.concat(fragments).toString('utf8'));
            fragments = [];
          }
        }
      }
    });
    socket.on('close', () => this.links.delete(socket));
    socket.on('error', () => this.links.delete(socket));
    sendFrame(
      socket,
      0x1,
      Buffer.from(
        JSON.stringify({
          type: 'hello',
          num_connections: this.links.size,
          debug_info: { host: 'standin', build_number: 1, approximate_connection_time: 18060 },
          connection_info: { app_id: APP_ID },
        }),
      ),
    );
    for (const w of this.linkWaiters.splice(0)) w();
  }

  private onSocketText(text: string): void {
    const message = parseJson(text) as
      | { envelope_id?: string; payload?: Record<string, unknown> }
      | undefined;
    if (!message?.envelope_id) return;
    const payload = message.payload ?? {};
    this.acks.set(message.envelope_id, payload);
    this.ackWaiters.get(message.envelope_id)?.(payload);
    this.ackWaiters.delete(message.envelope_id);
  }

  // ---------------------------------------------------------------- bookkeeping

  private newResponseUrl(target: Omit<ResponseUrl, 'uses'>): string {
    const url = `${this.url}/respond/${this.teamId}/${randomUUID()}`;
    this.responseUrls.set(url, { ...target, uses: 0 });
    return url;
  }

  private newTrigger(user: string): string {
    const id = `${Date.now()}.${++this.idCounter}.${randomUUID().slice(0, 8)}`;
    this.triggers.set(id, { user, at: Date.now() });
    return id;
  }

  private nextTs(): string {
    return `${Math.floor(Date.now() / 1000)}.${String(++this.tsCounter).padStart(6, '0')}`;
  }

  private store(m: {
    channel: string;
    text: string;
    blocks: SlackBlock[];
    threadTs?: string;
    files?: StoredFile[];
    ephemeralTo?: string;
  }): StoredMessage {
    const message: StoredMessage = {
      channel: m.channel,
      ts: this.nextTs(),
      text: m.text,
      blocks: m.blocks,
      files: m.files ?? [],
      versions: [{ text: m.text, blocks: m.blocks, at: Date.now() }],
    };
    if (m.threadTs !== undefined) message.threadTs = m.threadTs;
    if (m.ephemeralTo !== undefined) message.ephemeralTo = m.ephemeralTo;
    this.messages.push(message);
    return message;
  }
}

function fail(error: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { ok: false, error, ...extra };
}

function messageJson(m: StoredMessage): Record<string, unknown> {
  return { type: 'message', user: BOT_USER, bot_id: BOT_ID, ts: m.ts, text: m.text, blocks: m.blocks };
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function parseJson(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  try {
    return JSON.parse(value);
  } catch {
    return undefined;
  }
}

/** Web API arguments: form fields (objects JSON-encoded inside, as the SDK sends them) or a JSON body. */
function parseArgs(contentType: string, body: Buffer): Record<string, unknown> {
  if (contentType.startsWith('application/json'))
    return (parseJson(body.toString('utf8')) as Record<string, unknown>) ?? {};
  return Object.fromEntries(new URLSearchParams(body.toString('utf8')));
}

function sniffMime(bytes: Buffer): string {
  if (bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])))
    return 'image/png';
  if (
    bytes.subarray(0, 4).toString('latin1') === 'RIFF' &&
    bytes.subarray(8, 12).toString('latin1') === 'WEBP'
  )
    return 'image/webp';
  if (bytes[0] === 0xff && bytes[1] === 0xd8) return 'image/jpeg';
  return 'application/octet-stream';
}

function findElement(
  blocks: SlackBlock[],
  actionId: string,
): { element: Record<string, unknown>; blockId: string } | undefined {
  for (const [i, block] of blocks.entries()) {
    if (block.type !== 'actions') continue;
    for (const element of block.elements as Record<string, unknown>[]) {
      if (element.action_id === actionId) return { element, blockId: String(block.block_id ?? `b${i}`) };
    }
  }
  return undefined;
}

// ---------------------------------------------------------------- Block Kit checks, as Slack answers them

type BlocksRead = { ok: true; blocks: SlackBlock[] } | { ok: false; failure: Record<string, unknown> };

function readBlocks(raw: unknown): BlocksRead {
  if (raw === undefined) return { ok: true, blocks: [] };
  const blocks = parseJson(raw);
  if (!Array.isArray(blocks)) return { ok: false, failure: fail('invalid_blocks_format') };
  const errors = blockErrors(blocks as SlackBlock[]);
  if (errors.length > 0) {
    return {
      ok: false,
      failure: fail('invalid_blocks', {
        errors,
        response_metadata: { messages: errors.map((e) => `[ERROR] ${e}`) },
      }),
    };
  }
  return { ok: true, blocks: blocks as SlackBlock[] };
}

function textOf(t: unknown): string {
  return (t as { text?: unknown } | undefined)?.text === undefined
    ? ''
    : String((t as { text: unknown }).text);
}

function blockErrors(blocks: SlackBlock[]): string[] {
  const errors: string[] = [];
  const tooLong = (text: string, max: number, at: string) => {
    if (text.length > max) errors.push(`must be less than ${max + 1} characters [json-pointer:${at}]`);
  };
  if (blocks.length > 50) errors.push('no more than 50 items allowed [json-pointer:/blocks]');
  const actionIds = new Set<string>();
  blocks.forEach((block, i) => {
    const at = `/blocks/${i}`;
    switch (block.type) {
      case 'section': {
        if (block.text === undefined && block.fields === undefined)
          errors.push(`must provide text or fields [json-pointer:${at}]`);
        tooLong(textOf(block.text), 3000, `${at}/text/text`);
        const fields = (block.fields ?? []) as unknown[];
        if (fields.length > 10) errors.push(`no more than 10 items allowed [json-pointer:${at}/fields]`);
        for (const [j, f] of fields.entries()) tooLong(textOf(f), 2000, `${at}/fields/${j}/text`);
        break;
      }
      case 'header':
        if ((block.text as { type?: string } | undefined)?.type !== 'plain_text')
          errors.push(`must be plain_text [json-pointer:${at}/text]`);
        tooLong(textOf(block.text), 150, `${at}/text/text`);
        break;
      case 'context': {
        const elements = (block.elements ?? []) as unknown[];
        if (elements.length === 0 || elements.length > 10)
          errors.push(`must have 1 to 10 elements [json-pointer:${at}/elements]`);
        break;
      }
      case 'divider':
      case 'image':
        break;
      case 'input':
        if (block.element === undefined) errors.push(`missing element [json-pointer:${at}]`);
        break;
      case 'actions': {
        const elements = (block.elements ?? []) as Record<string, unknown>[];
        if (elements.length === 0 || elements.length > 25)
          errors.push(`must have 1 to 25 elements [json-pointer:${at}/elements]`);
        elements.forEach((e, j) => {
          const ep = `${at}/elements/${j}`;
          const id = String(e.action_id ?? '');
          if (id.length === 0 || id.length > 255)
            errors.push(`invalid action_id [json-pointer:${ep}/action_id]`);
          if (actionIds.has(id)) errors.push(`action_id already exists [json-pointer:${ep}/action_id]`);
          actionIds.add(id);
          if (e.type === 'button') {
            tooLong(textOf(e.text), 75, `${ep}/text/text`);
            if (e.style !== undefined && e.style !== 'primary' && e.style !== 'danger')
              errors.push(`must be one of primary, danger [json-pointer:${ep}/style]`);
          } else if (e.type === 'static_select') {
            const options = (e.options ?? []) as Record<string, unknown>[];
            if (options.length === 0 || options.length > 100)
              errors.push(`must have 1 to 100 options [json-pointer:${ep}/options]`);
            tooLong(textOf(e.placeholder), 150, `${ep}/placeholder/text`);
            options.forEach((o, k) => {
              tooLong(textOf(o.text), 75, `${ep}/options/${k}/text/text`);
              tooLong(String(o.value ?? ''), 150, `${ep}/options/${k}/value`);
              if (o.description !== undefined)
                tooLong(textOf(o.description), 75, `${ep}/options/${k}/description/text`);
            });
            if (
              e.initial_option !== undefined &&
              !options.some((o) => o.value === (e.initial_option as { value?: unknown }).value)
            )
              errors.push(`initial_option must be one of the options [json-pointer:${ep}/initial_option]`);
          } else {
            errors.push(`unsupported element type ${String(e.type)} [json-pointer:${ep}]`);
          }
        });
        break;
      }
      default:
        errors.push(`unsupported block type ${String(block.type)} [json-pointer:${at}]`);
    }
  });
  return errors;
}

// ---------------------------------------------------------------- WebSocket frames

function readFrame(buf: Buffer): { fin: boolean; opcode: number; payload: Buffer; size: number } | undefined {
  if (buf.length < 2) return undefined;
  const fin = (buf[0] & 0x80) !== 0;
  const opcode = buf[0] & 0x0f;
  const masked = (buf[1] & 0x80) !== 0;
  let length = buf[1] & 0x7f;
  let offset = 2;
  if (length === 126) {
    if (buf.length < 4) return undefined;
    length = buf.readUInt16BE(2);
    offset = 4;
  } else if (length === 127) {
    if (buf.length < 10) return undefined;
    length = Number(buf.readBigUInt64BE(2));
    offset = 10;
  }
  const maskAt = offset;
  if (masked) offset += 4;
  if (buf.length < offset + length) return undefined;
  const payload = Buffer.from(buf.subarray(offset, offset + length));
  // Clients mask every frame they send (RFC 6455 §5.3).
  if (masked) for (let i = 0; i < payload.length; i++) payload[i] ^= buf[maskAt + (i % 4)];
  return { fin, opcode, payload, size: offset + length };
}

function sendFrame(socket: Socket, opcode: number, payload: Buffer): void {
  let header: Buffer;
  if (payload.length < 126) header = Buffer.from([0x80 | opcode, payload.length]);
  else if (payload.length < 65536) {
    header = Buffer.alloc(4);
    header[0] = 0x80 | opcode;
    header[1] = 126;
    header.writeUInt16BE(payload.length, 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = 0x80 | opcode;
    header[1] = 127;
    header.writeBigUInt64BE(BigInt(payload.length), 2);
  }
  if (!socket.destroyed) socket.write(Buffer.concat([header, payload]));
}
