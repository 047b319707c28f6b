// Reply models → Block Kit. Cards become a header, sections and fields; rows become actions
// blocks; Slack's limits (50 blocks, 25 elements an actions block, text lengths) are enforced
// here, so whatever the commands return can be posted.

import type { types, ViewOutput } from '@slack/bolt';
import {
  describeProgress,
  type FormField,
  type FormValues,
  type JobProgress,
  type MessageReply,
  type Reply,
  type ReplyButton,
  type ReplyCard,
  type ReplyForm,
  type ReplyRow,
  type ReplySelect,
  truncate,
} from '../../commands/reply.ts';

type KnownBlock = types.KnownBlock;
type ActionsBlockElement = types.ActionsBlockElement;
type Button = types.Button;
type PlainTextOption = types.PlainTextOption;

/** Block Kit's limits, from Slack's reference pages. */
export const SLACK_LIMITS = Object.freeze({
  blocks: 50,
  actionsElements: 25,
  actionId: 255,
  sectionText: 3000,
  sectionFields: 10,
  fieldText: 2000,
  headerText: 150,
  contextElements: 10,
  contextText: 3000,
  buttonText: 75,
  buttonValue: 2000,
  selectOptions: 100,
  optionText: 75,
  optionValue: 150,
  optionDescription: 75,
  placeholder: 150,
  /** a modal's title, submit and close labels */
  modalTitle: 24,
  inputLabel: 2000,
  /** the notification text beside the blocks; Slack truncates past 40 000, 4 000 reads well */
  fallbackText: 4000,
});

export interface SlackMessage {
  /** notification and screen-reader text */
  text: string;
  blocks: KnownBlock[];
}

export interface RenderOptions {
  /** mrkdwn shown small above the reply: who asked, what */
  heading?: string;
  /** plain words shown small below the reply */
  note?: string;
}

/** Slack mrkdwn needs &, <, > escaped; ours writes **bold** where Slack writes *bold*. */
export function mrkdwn(markdown: string): string {
  const escaped = markdown.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  // Code keeps its characters; only the prose between code spans is restyled.
  return escaped
    .split(/(```[\s\S]*?```|`[^`\n]*`)/)
    .map((part, i) =>
      i % 2 === 1 ? part : part.replace(/\*\*(.+?)\*\*/g, '*$1*').replace(/^(\s*)- /gm, '$1• '),
    )
    .join('');
}

/** Text cut to one of Block Kit's limits. */
export const clip = truncate;

const plain = (text: string, max: number) => ({
  type: 'plain_text' as const,
  text: clip(text, max),
  emoji: true,
});
const markdown = (text: string, max: number) => ({ type: 'mrkdwn' as const, text: clip(text, max) });

const PROGRESS_ICON: Readonly<Record<JobProgress['state'], string>> = {
  queued: '⏳',
  running: '🎨',
  done: '✅',
  failed: '⚠️',
  cancelled: '🚫',
};

/** The one line a job's status message shows. */
export function progressLine(progress: JobProgress): string {
  return `${PROGRESS_ICON[progress.state]} ${describeProgress(progress)}`;
}

export function renderReply(reply: Reply, options: RenderOptions = {}): SlackMessage {
  const content: KnownBlock[] = [];
  if (options.heading) content.push(context(options.heading));
  let text: string;
  if (reply.kind === 'progress') {
    text = progressLine(reply.progress);
    content.push(section(mrkdwn(text)));
  } else {
    text = mrkdwn(fallbackOf(reply));
    content.push(...messageBlocks(reply));
  }
  if (options.note) content.push(context(mrkdwn(options.note)));
  const actions = (reply.rows ?? []).flatMap(actionsOf);
  return { text: clip(text, SLACK_LIMITS.fallbackText), blocks: fitBlocks(content, actions) };
}

function fallbackOf(reply: MessageReply): string {
  const parts = [reply.card?.title, reply.text ?? reply.card?.description].filter(
    (p): p is string => p !== undefined && p !== '',
  );
  return parts.length > 0 ? parts.join(': ') : 'clora';
}

function messageBlocks(reply: MessageReply): KnownBlock[] {
  const blocks: KnownBlock[] = [];
  if (reply.card) blocks.push(...cardBlocks(reply.card));
  if (reply.text) blocks.push(...longSection(mrkdwn(reply.text)));
  return blocks;
}

function cardBlocks(card: ReplyCard): KnownBlock[] {
  const blocks: KnownBlock[] = [{ type: 'header', text: plain(card.title, SLACK_LIMITS.headerText) }];
  if (card.description) blocks.push(...longSection(mrkdwn(card.description)));
  // Side-by-side fields share a section (10 at most); a wide field gets its own.
  let inline: { type: 'mrkdwn'; text: string }[] = [];
  const flush = () => {
    if (inline.length > 0) blocks.push({ type: 'section', fields: inline });
    inline = [];
  };
  for (const field of card.fields) {
    const text = `*${mrkdwn(field.name)}*\n${mrkdwn(field.value)}`;
    if (field.inline) {
      inline.push(markdown(text, SLACK_LIMITS.fieldText));
      if (inline.length === SLACK_LIMITS.sectionFields) flush();
    } else {
      flush();
      blocks.push(section(text));
    }
  }
  flush();
  if (card.footer) blocks.push(context(mrkdwn(card.footer)));
  return blocks;
}

function section(text: string): KnownBlock {
  return { type: 'section', text: markdown(text, SLACK_LIMITS.sectionText) };
}

/** Text past a section's 3000 characters continues in the next section, split at a line. */
function longSection(text: string): KnownBlock[] {
  const blocks: KnownBlock[] = [];
  let rest = text;
  while (rest.length > SLACK_LIMITS.sectionText) {
    const cut = rest.lastIndexOf('\n', SLACK_LIMITS.sectionText);
    const at = cut > SLACK_LIMITS.sectionText / 2 ? cut : SLACK_LIMITS.sectionText;
    blocks.push(section(rest.slice(0, at)));
    rest = rest.slice(at).replace(/^\n/, '');
  }
  if (rest.length > 0) blocks.push(section(rest));
  return blocks;
}

function context(text: string): KnownBlock {
  return { type: 'context', elements: [markdown(text, SLACK_LIMITS.contextText)] };
}

function checkedId(id: string): string {
  // Our ids are ≤ 100 characters; a longer one is a bug upstream, not something to clip.
  if (id.length === 0 || id.length > SLACK_LIMITS.actionId)
    throw new RangeError(`action_id '${id}' must have 1–${SLACK_LIMITS.actionId} characters`);
  return id;
}

function button(b: ReplyButton): Button {
  const element: Button = {
    type: 'button',
    action_id: checkedId(b.id),
    text: plain(b.label, SLACK_LIMITS.buttonText),
  };
  // Block Kit has no secondary style (the default) and no disabled buttons: those are left out.
  if (b.style === 'primary' || b.style === 'danger') element.style = b.style;
  return element;
}

function option(o: { label: string; value: string; description?: string }): PlainTextOption {
  if (o.value.length > SLACK_LIMITS.optionValue)
    throw new RangeError(`option value '${o.value}' is over ${SLACK_LIMITS.optionValue} characters`);
  const opt: PlainTextOption = { text: plain(o.label, SLACK_LIMITS.optionText), value: o.value };
  if (o.description) opt.description = plain(o.description, SLACK_LIMITS.optionDescription);
  return opt;
}

function selectElements(select: ReplySelect): ActionsBlockElement[] {
  if (select.disabled) return [];
  // Our pages hold 25 options; the cap here only guards Slack's own 100.
  const options = select.options.slice(0, SLACK_LIMITS.selectOptions).map(option);
  if (options.length === 0) return [];
  const chosen = select.options.findIndex((o) => o.selected);
  const element: types.StaticSelect = {
    type: 'static_select',
    action_id: checkedId(select.id),
    placeholder: plain(select.placeholder, SLACK_LIMITS.placeholder),
    options,
  };
  if (chosen >= 0 && chosen < options.length) element.initial_option = options[chosen];
  const elements: ActionsBlockElement[] = [element];
  const paging = select.paging;
  if (paging?.previousId)
    elements.push(button({ id: paging.previousId, label: '◀ Previous', style: 'secondary' }));
  if (paging?.nextId) elements.push(button({ id: paging.nextId, label: 'Next ▶', style: 'secondary' }));
  return elements;
}

function actionsOf(row: ReplyRow): KnownBlock[] {
  const elements =
    row.kind === 'buttons' ? row.buttons.filter((b) => !b.disabled).map(button) : selectElements(row.select);
  const blocks: KnownBlock[] = [];
  for (let i = 0; i < elements.length; i += SLACK_LIMITS.actionsElements) {
    blocks.push({ type: 'actions', elements: elements.slice(i, i + SLACK_LIMITS.actionsElements) });
  }
  return blocks;
}

/** At most 50 blocks: the buttons always stay; content past the room left is cut with a note. */
function fitBlocks(content: KnownBlock[], actions: KnownBlock[]): KnownBlock[] {
  const keptActions = actions.slice(0, SLACK_LIMITS.blocks - 2);
  const room = SLACK_LIMITS.blocks - keptActions.length;
  if (content.length <= room) return [...content, ...keptActions];
  const shown = content.slice(0, room - 1);
  const cut = content.length - shown.length;
  return [
    ...shown,
    context(`… ${cut} more block${cut === 1 ? '' : 's'} did not fit in one Slack message`),
    ...keptActions,
  ];
}

/** Every way `message` breaks Block Kit's limits; the renderer's own check, used by its tests. */
export function checkBlocks(message: SlackMessage): string[] {
  const problems: string[] = [];
  const L = SLACK_LIMITS;
  const over = (text: string | undefined, max: number, what: string) => {
    if (text !== undefined && text.length > max)
      problems.push(`${what} has ${text.length} characters, over ${max}`);
  };
  if (message.blocks.length > L.blocks) problems.push(`${message.blocks.length} blocks, over ${L.blocks}`);
  over(message.text, L.fallbackText, 'text');
  const ids = new Set<string>();
  for (const [i, block] of message.blocks.entries()) {
    const at = `block ${i} (${block.type})`;
    if (block.type === 'section') {
      over(block.text?.text, L.sectionText, `${at} text`);
      if ((block.fields?.length ?? 0) > L.sectionFields)
        problems.push(`${at} has over ${L.sectionFields} fields`);
      for (const f of block.fields ?? []) over(f.text, L.fieldText, `${at} field`);
    } else if (block.type === 'header') {
      over(block.text.text, L.headerText, `${at} text`);
    } else if (block.type === 'context') {
      if (block.elements.length > L.contextElements)
        problems.push(`${at} has over ${L.contextElements} elements`);
    } else if (block.type === 'actions') {
      if (block.elements.length > L.actionsElements)
        problems.push(`${at} has ${block.elements.length} elements, over ${L.actionsElements}`);
      for (const e of block.elements) {
        const id = 'action_id' in e ? e.action_id : undefined;
        if (id === undefined || id.length === 0 || id.length > L.actionId)
          problems.push(`${at}: bad action_id '${id}'`);
        else if (ids.has(id)) problems.push(`${at}: action_id '${id}' is used twice`);
        else ids.add(id);
        if (e.type === 'button') over(e.text.text, L.buttonText, `${at} button text`);
        if (e.type === 'static_select') {
          over(e.placeholder?.text, L.placeholder, `${at} placeholder`);
          const options = e.options ?? [];
          if (options.length === 0 || options.length > L.selectOptions)
            problems.push(`${at} select has ${options.length} options`);
          for (const o of options) {
            over(o.text.text, L.optionText, `${at} option text`);
            over(o.value, L.optionValue, `${at} option value`);
            over(o.description?.text, L.optionDescription, `${at} option description`);
          }
        }
      }
    }
  }
  return problems;
}

/** A form as a Block Kit modal: `callbackId` routes its submission, `metadata` comes back with it. */
export function renderForm(form: ReplyForm, callbackId: string, metadata: string): types.ModalView {
  return {
    type: 'modal',
    callback_id: callbackId,
    private_metadata: metadata,
    title: plain(form.title, SLACK_LIMITS.modalTitle),
    submit: plain(form.submitLabel, SLACK_LIMITS.modalTitle),
    close: plain('Cancel', SLACK_LIMITS.modalTitle),
    blocks: [section(mrkdwn(form.intro)), ...form.fields.map(inputBlock)],
  };
}

// Each field is its own block and action id, so Slack's per-field errors are keyed by field id.
function inputBlock(field: FormField): KnownBlock {
  const label = plain(field.label, SLACK_LIMITS.inputLabel);
  if (field.kind === 'choice') {
    const options = field.options.slice(0, SLACK_LIMITS.selectOptions).map(option);
    const initial = options.find((o) => o.value === field.initial);
    return {
      type: 'input',
      block_id: field.id,
      label,
      element: {
        type: 'static_select',
        action_id: checkedId(field.id),
        options,
        ...(initial ? { initial_option: initial } : {}),
      },
    };
  }
  return {
    type: 'input',
    block_id: field.id,
    label,
    ...(field.hint ? { hint: plain(field.hint, SLACK_LIMITS.inputLabel) } : {}),
    element: {
      type: 'number_input',
      action_id: checkedId(field.id),
      is_decimal_allowed: true,
      initial_value: String(field.initial),
      min_value: String(field.min),
      max_value: String(field.max),
    },
  };
}

/** What a submitted modal's fields hold, by field id. */
export function formValues(view: ViewOutput): FormValues {
  const values: Record<string, string | undefined> = {};
  for (const block of Object.values(view.state.values))
    for (const [id, state] of Object.entries(block))
      values[id] = state.selected_option?.value ?? state.value ?? undefined;
  return values;
}
