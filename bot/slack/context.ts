// Who did something, and where the answer goes, read from Slack's payloads: a slash command,
// a block action or a view submission.

import type { BlockAction, RespondFn, SlashCommand } from '@slack/bolt';
import type { ChatContext } from '../../commands/service.ts';

/** Where replies to one request go. */
export interface Place {
  channel: string;
  /** the thread new messages join */
  threadTs?: string;
  userId: string;
  /** the request's response_url: ephemeral replies, and edits of ephemeral messages */
  respond?: RespondFn;
  /** the message a button or select was on */
  source?: { ts: string; ephemeral: boolean };
}

/** Slack sends &, <, > of typed text as &amp; &lt; &gt; (its control characters); the commands want what was typed. */
export function typedText(slackText: string): string {
  return slackText.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

export function commandContext(command: SlashCommand): ChatContext {
  return {
    platform: 'slack',
    userId: command.user_id,
    userName: command.user_name,
    scope: command.team_id,
    channel: command.channel_id,
    isAdmin: false,
    message: { channel: command.channel_id },
  };
}

export function commandPlace(command: SlashCommand, respond: RespondFn): Place {
  return { channel: command.channel_id, userId: command.user_id, respond };
}

interface ActionContainer {
  channel_id?: string;
  message_ts?: string;
  thread_ts?: string;
  is_ephemeral?: boolean;
}

function containerOf(body: BlockAction): ActionContainer {
  return body.container as ActionContainer;
}

export function actionContext(body: BlockAction, isAdmin: boolean): ChatContext {
  const c = containerOf(body);
  const channel = c.channel_id ?? body.channel?.id ?? '';
  const message: ChatContext['message'] = { channel };
  if (c.message_ts) message.ts = c.message_ts;
  return {
    platform: 'slack',
    userId: body.user.id,
    userName: body.user.username ?? body.user.name ?? body.user.id,
    scope: body.team?.id ?? body.user.team_id ?? 'slack',
    channel,
    isAdmin,
    message,
  };
}

/**
 * Where an action's answer goes: the channel the pressed message is in, in its thread if it is
 * in one, or (`underMessage`) in the thread under the pressed message itself.
 */
export function actionPlace(
  body: BlockAction,
  respond: RespondFn,
  options: { underMessage?: boolean } = {},
): Place {
  const c = containerOf(body);
  const channel = c.channel_id ?? body.channel?.id ?? '';
  const ephemeral = c.is_ephemeral === true;
  const ts = c.message_ts ?? body.message?.ts;
  const thread = (body.message?.thread_ts as string | undefined) ?? c.thread_ts;
  const place: Place = { channel, userId: body.user.id, respond };
  if (ts) place.source = { ts, ephemeral };
  // An ephemeral message cannot hold a thread.
  const threadTs = ephemeral ? undefined : options.underMessage ? (thread ?? ts) : thread;
  if (threadTs) place.threadTs = threadTs;
  return place;
}
