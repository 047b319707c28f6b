// The playground page: sends what the user types to /api/command, renders the bot's reply
// model (text, cards, pictures, buttons, selects), keeps one message per job that the event
// stream edits in place, and completes LoRA names as the user types. Plain JS, no build.
// Everything the server sends is put in the page as text nodes, never parsed as HTML.

const TAB = newTabId();
const log = document.getElementById('log');
const form = document.getElementById('composer');
const input = document.getElementById('input');
const suggestions = document.getElementById('suggestions');
const banner = document.getElementById('banner');
const bannerText = document.getElementById('banner-text');
const modelStatus = document.getElementById('model-status');
const loraCount = document.getElementById('lora-count');
const connection = document.getElementById('connection');

const history = [];
let historyAt = 0;
let example = '';
let randomModel = false;

// ---------------------------------------------------------------- small helpers

/** A fresh id per page load: two tabs never share a stream. */
function newTabId() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

async function api(path, body) {
  const res = await fetch(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ ...body, tab: TAB }),
  });
  const data = await res.json().catch(() => ({ error: `the playground answered ${res.status}` }));
  if (!res.ok) throw new Error(data.error ?? `the playground answered ${res.status}`);
  return data;
}

function nearBottom() {
  return log.scrollHeight - log.scrollTop - log.clientHeight < 120;
}

function scrollDown(force) {
  if (force || nearBottom()) log.scrollTop = log.scrollHeight;
}

// ---------------------------------------------------------------- markdown-ish text

const INLINE = /(`[^`\n]+`)|(\*\*[^*\n]+\*\*)|((?<![\p{L}\p{N}_])_[^_\n]+_(?![\p{L}\p{N}_]))/gu;

/** **bold**, _italic_ and `code` within one line, as text nodes and elements. */
function inline(line) {
  const out = document.createDocumentFragment();
  let at = 0;
  for (const m of line.matchAll(INLINE)) {
    if (m.index > at) out.append(line.slice(at, m.index));
    const token = m[0];
    if (m[1]) out.append(code(token.slice(1, -1)));
    else if (m[2]) out.append(el('strong', '', token.slice(2, -2)));
    else out.append(el('em', '', token.slice(1, -1)));
    at = m.index + token.length;
  }
  if (at < line.length) out.append(line.slice(at));
  return out;
}

/** A code span; one holding a command puts it in the input box when clicked, to edit and send. */
function code(text) {
  const node = el('code', '', text);
  if (!/^\/(compose|loras?|queue|help)\b/.test(text)) return node;
  node.className = 'command';
  node.tabIndex = 0;
  node.title = 'Put this command in the input box';
  node.setAttribute('role', 'button');
  const use = () => {
    input.value = text;
    input.focus();
    input.setSelectionRange(text.length, text.length);
  };
  node.addEventListener('click', use);
  node.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      use();
    }
  });
  return node;
}

/** Markdown-ish text (``` blocks, - lists, line breaks and inline marks) as DOM nodes. */
function markdown(text) {
  const out = document.createDocumentFragment();
  const parts = text.split('```');
  parts.forEach((part, i) => {
    if (i % 2 === 1) {
      out.append(el('pre', '', part.replace(/^\n/, '').replace(/\n$/, '')));
      return;
    }
    const lines = part.replace(/^\n/, '').replace(/\n$/, '').split('\n');
    if (part === '' || (lines.length === 1 && lines[0] === '' && i > 0)) return;
    let list = null;
    let paragraph = null;
    for (const line of lines) {
      const item = /^\s*[-•]\s+(.*)$/.exec(line);
      if (item) {
        if (!list) {
          list = el('ul');
          out.append(list);
        }
        paragraph = null;
        const li = el('li');
        li.append(inline(item[1]));
        list.append(li);
        continue;
      }
      list = null;
      if (!paragraph) {
        paragraph = el('p');
        out.append(paragraph);
      } else paragraph.append(el('br'));
      paragraph.append(inline(line));
    }
  });
  return out;
}

// ---------------------------------------------------------------- messages

function botMessage() {
  const msg = el('article', 'msg bot');
  msg.append(el('div', 'avatar'));
  const body = el('div', 'body');
  const meta = el('div', 'meta');
  meta.append(el('span', 'name', 'CLoRA bot'));
  body.append(meta, el('div', 'content'), el('div', 'extra'));
  msg.append(body);
  return msg;
}

function appendBot(reply) {
  const msg = botMessage();
  render(msg, reply);
  log.append(msg);
  scrollDown(true);
  return msg;
}

function appendUser(text, isAction) {
  const msg = el('article', 'msg user');
  msg.append(el('div', isAction ? 'bubble action' : 'bubble', text));
  log.append(msg);
  scrollDown(true);
}

function appendNote(text, isError) {
  const msg = botMessage();
  if (isError) msg.classList.add('error');
  msg.querySelector('.content').append(withText(text));
  log.append(msg);
  scrollDown(true);
}

function withText(text) {
  const div = el('div', 'text');
  div.append(markdown(text));
  return div;
}

const PROGRESS_STATES = new Set(['queued', 'running', 'failed', 'cancelled']);

/** Draws a reply into a message, replacing what it showed. */
function render(msg, reply) {
  const meta = msg.querySelector('.meta');
  meta.querySelector('.only-you')?.remove();
  if (reply.ephemeral) meta.append(el('span', 'only-you', 'Only you can see this'));
  const content = msg.querySelector('.content');
  msg.dataset.seq = String(reply.seq);
  const rowsKey = JSON.stringify(reply.rows);
  // Progress arrives several times a second: edit the line and preview, keep the buttons steady.
  if (reply.kind === 'progress' && PROGRESS_STATES.has(msg.dataset.state) && msg.dataset.rows === rowsKey) {
    updateProgress(msg, reply);
    return;
  }
  content.replaceChildren();
  msg.dataset.rows = rowsKey;
  if (reply.kind === 'progress') {
    const progress = el('div', 'progress');
    progress.append(el('div', 'progress-line'));
    content.append(progress);
    updateProgress(msg, reply);
  } else {
    if (reply.jobId) msg.dataset.state = 'done';
    if (reply.text) content.append(withText(reply.text));
    const loose = [...reply.images];
    if (reply.card) {
      const inCard = reply.card.image ? loose.findIndex((i) => i.filename === reply.card.image) : -1;
      const cardImage = inCard >= 0 ? loose.splice(inCard, 1)[0] : undefined;
      content.append(card(reply.card, cardImage));
    }
    // Masks that came with the result go in the toggled panel, as Show masks puts them there.
    const masks = loose.filter((i) => i.kind === 'masks' || i.kind === 'maps');
    const others = loose.filter((i) => !masks.includes(i));
    if (others.length) content.append(pictures(others));
    if (masks.length && reply.jobId) setMasks(msg, masks, true);
    else if (masks.length) content.append(pictures(masks));
  }
  for (const row of reply.rows) content.append(renderRow(msg, row));
  syncMaskButton(msg);
}

function updateProgress(msg, reply) {
  msg.dataset.state = reply.state;
  const progress = msg.querySelector('.content .progress');
  progress.dataset.state = reply.state;
  progress.querySelector('.progress-line').textContent = reply.line;
  const preview = progress.querySelector('.preview');
  if (reply.preview) {
    if (!preview) progress.prepend(picture(reply.preview, 'preview'));
    else preview.src = reply.preview.url;
  } else if (reply.state !== 'running') preview?.remove();
}

function card(c, image) {
  const box = el('div', `card tone-${c.tone}`);
  box.append(el('div', 'card-title', c.title));
  if (c.description) {
    const d = el('div', 'card-description');
    d.append(markdown(c.description));
    box.append(d);
  }
  if (c.fields.length) {
    const fields = el('div', 'fields');
    for (const f of c.fields) {
      const field = el('div', f.inline ? 'field inline' : 'field');
      field.append(el('div', 'field-name', f.name));
      const value = el('div', 'field-value');
      value.append(markdown(f.value));
      field.append(value);
      fields.append(field);
    }
    box.append(fields);
  }
  if (image) {
    const wrap = el('div', 'card-image');
    wrap.append(picture(image));
    box.append(wrap);
  }
  if (c.footer) box.append(el('div', 'card-footer', c.footer));
  return box;
}

function pictures(images) {
  const box = el('div', 'pictures');
  for (const image of images) box.append(picture(image));
  return box;
}

function picture(image, className = 'picture') {
  const img = el('img', className);
  img.alt = image.alt;
  img.title = image.alt;
  img.dataset.kind = image.kind;
  img.decoding = 'async';
  img.addEventListener('load', () => {
    // Tiny test models make tiny pictures: show them twice as large, with crisp pixels.
    if (className === 'picture' && img.naturalWidth > 0 && img.naturalWidth < 256 && image.kind === 'image') {
      img.style.width = `${img.naturalWidth * 2}px`;
      img.classList.add('pixelated');
    }
    scrollDown(false);
  });
  img.src = image.url;
  return img;
}

// ---------------------------------------------------------------- rows: buttons and selects

function renderRow(msg, row) {
  const box = el('div', 'row');
  if (row.kind === 'buttons') {
    for (const b of row.buttons) {
      const button = el('button', `btn ${b.style}`, b.label);
      button.type = 'button';
      button.disabled = Boolean(b.disabled);
      button.dataset.action = b.action;
      button.dataset.id = b.id;
      button.addEventListener('click', () => press(msg, button, b));
      box.append(button);
    }
    return box;
  }
  const s = row.select;
  const select = el('select');
  select.disabled = Boolean(s.disabled);
  select.setAttribute('aria-label', s.placeholder);
  const placeholder = el('option', '', s.placeholder);
  placeholder.value = '';
  placeholder.disabled = true;
  placeholder.selected = !s.options.some((o) => o.selected);
  select.append(placeholder);
  for (const o of s.options) {
    const option = el('option', '', o.description ? `${o.label} — ${o.description}` : o.label);
    option.value = o.value;
    option.selected = Boolean(o.selected);
    select.append(option);
  }
  select.addEventListener('change', () => act(msg, select, s.id, select.value, 'select'));
  box.append(select);
  const p = s.paging;
  if (p && p.pageCount > 1) {
    const prev = el('button', 'btn secondary', '‹ Previous');
    prev.type = 'button';
    prev.disabled = p.previousId === null;
    prev.addEventListener('click', () => act(msg, prev, p.previousId, undefined, 'page'));
    const next = el('button', 'btn secondary', 'Next ›');
    next.type = 'button';
    next.disabled = p.nextId === null;
    next.addEventListener('click', () => act(msg, next, p.nextId, undefined, 'page'));
    box.append(prev, el('span', 'paging', `page ${p.page + 1} of ${p.pageCount}`), next);
  }
  return box;
}

function press(msg, button, b) {
  // Show masks asks the bot once; after that the button only shows or hides them.
  if (b.action === 'masks' && msg.dataset.masks) {
    setMasks(msg, null, msg.dataset.masks !== 'shown');
    return;
  }
  if (b.action !== 'cancel') appendUser(`› ${b.label}`, true);
  act(msg, button, b.id, undefined, b.action);
}

async function act(msg, control, id, value, kind) {
  control.disabled = true;
  control.classList.add('busy');
  try {
    const outcome = await api('/api/action', value === undefined ? { id } : { id, value });
    handleOutcome(outcome, msg, kind);
  } catch (e) {
    appendNote(`⚠️ ${e.message}`, true);
  } finally {
    // A control the reply replaced is gone; one still shown comes back.
    control.classList.remove('busy');
    if (control.isConnected) control.disabled = false;
    syncMaskButton(msg);
  }
}

function handleOutcome(outcome, source, kind) {
  if (outcome.prefill) {
    input.value = outcome.prefill;
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);
  }
  const reply = outcome.reply;
  if (kind === 'masks' && reply.kind === 'message' && reply.images.length && source) {
    setMasks(source, reply.images, true, reply.text);
    return;
  }
  const jobId = outcome.jobId ?? reply.jobId;
  if (jobId && (reply.kind === 'progress' || reply.jobId)) {
    showJob(jobId, reply, false);
    return;
  }
  if (outcome.replace && source) {
    render(source, reply);
    return;
  }
  appendBot(reply);
}

// A cancelled job still runs until the engine stops; its progress must not undo "Cancelled".
const TERMINAL = new Set(['done', 'failed', 'cancelled', 'final']);

/** One message per job: created at its first reply, redrawn as newer replies arrive. */
function showJob(jobId, reply, final) {
  let msg = log.querySelector(`[data-job="${CSS.escape(jobId)}"]`);
  if (!msg) {
    msg = botMessage();
    msg.dataset.job = jobId;
    log.append(msg);
  } else if (Number(msg.dataset.seq) >= reply.seq || (!final && TERMINAL.has(msg.dataset.state))) return;
  render(msg, reply);
  if (final && !TERMINAL.has(msg.dataset.state)) msg.dataset.state = 'final';
  scrollDown(true);
}

// ---------------------------------------------------------------- masks panel

function setMasks(msg, images, shown, caption) {
  const extra = msg.querySelector('.extra');
  if (images) {
    const panel = el('div', 'masks');
    if (caption) panel.append(el('div', 'masks-caption', caption));
    panel.append(pictures(images));
    extra.replaceChildren(panel);
  }
  if (!extra.firstChild) return;
  extra.hidden = !shown;
  msg.dataset.masks = shown ? 'shown' : 'hidden';
  syncMaskButton(msg);
  if (shown) scrollDown(false);
}

function syncMaskButton(msg) {
  const button = msg.querySelector('.content button[data-action="masks"]');
  if (!button || !msg.dataset.masks) return;
  const shown = msg.dataset.masks === 'shown';
  button.textContent = shown ? 'Hide masks' : 'Show masks';
  button.disabled = false;
  button.classList.toggle('toggled', shown);
  button.setAttribute('aria-pressed', String(shown));
}

// ---------------------------------------------------------------- status

function setStatus(status) {
  const m = status.model;
  const state = !m.ready ? 'missing' : m.engine === 'loading' ? 'loading' : 'ready';
  modelStatus.dataset.state = state;
  const name = m.name ? `${m.name}` : 'model';
  const kind = m.random ? ' (random weights)' : '';
  modelStatus.querySelector('.label').textContent =
    state === 'missing'
      ? 'no model'
      : state === 'loading'
        ? `${name}${kind} · loading…`
        : `${name}${kind} · ready`;
  modelStatus.title =
    m.message ??
    (m.random
      ? 'A model with random weights: it draws noise. npm run demo-model installs a small trained world; or set MODEL_PATH to an SD 1.5 checkpoint.'
      : m.engine === 'remote workers'
        ? 'jobs run on remote workers'
        : '');
  randomModel = Boolean(m.random);
  loraCount.textContent = `${status.loras.usable} LoRA${status.loras.usable === 1 ? '' : 's'}`;
  banner.hidden = m.ready;
  bannerText.replaceChildren(markdown(m.message ?? ''));
  example = status.example;
  input.placeholder = status.example;
}

function welcome() {
  const msg = botMessage();
  const content = msg.querySelector('.content');
  content.append(
    withText(
      '**Welcome to the CLoRA playground.** Bind each subject of a prompt to a LoRA with `subject:<lora>`; ' +
        'every LoRA draws only its own subject.\n`/loras` lists the library, `/help` explains the options. ' +
        'Drop a picture the bot made onto the page to get its command back.',
    ),
  );
  if (randomModel) {
    content.append(
      el(
        'div',
        'note',
        'This model’s weights are random, so every picture is noise. The flow is real; npm run demo-model ' +
          'installs a small world the project trained, where the pictures show what CLoRA does; for real pictures, ' +
          'set MODEL_PATH to an SD 1.5 checkpoint.',
      ),
    );
  }
  const chip = el('button', 'chip', example);
  chip.type = 'button';
  chip.title = 'Put this example in the input box';
  chip.addEventListener('click', () => {
    input.value = example;
    input.focus();
  });
  content.append(chip);
  log.append(msg);
}

// ---------------------------------------------------------------- events

function listen() {
  const events = new EventSource(`/api/events?tab=${TAB}`);
  events.addEventListener('open', () => {
    connection.hidden = true;
  });
  events.addEventListener('error', () => {
    connection.hidden = false;
  });
  events.addEventListener('status', (e) => setStatus(JSON.parse(e.data)));
  events.addEventListener('job', (e) => {
    const update = JSON.parse(e.data);
    showJob(update.jobId, update.reply, update.final);
  });
}

// ---------------------------------------------------------------- input, completion, history

let completing = 0;
let completionTimer;
let active = -1;
let offered = [];

function closeSuggestions() {
  suggestions.hidden = true;
  suggestions.replaceChildren();
  input.setAttribute('aria-expanded', 'false');
  input.removeAttribute('aria-activedescendant');
  offered = [];
  active = -1;
}

function highlight(i) {
  active = i;
  suggestions.querySelectorAll('.option').forEach((li, j) => {
    li.setAttribute('aria-selected', String(j === i));
    if (j === i) {
      li.scrollIntoView({ block: 'nearest' });
      input.setAttribute('aria-activedescendant', li.id);
    }
  });
}

function accept(i) {
  const choice = offered[i];
  if (!choice) return;
  const after = input.value.slice(input.selectionStart ?? input.value.length);
  input.value = choice.text + after;
  input.setSelectionRange(choice.text.length, choice.text.length);
  closeSuggestions();
  input.focus();
}

async function complete() {
  const caret = input.selectionStart ?? input.value.length;
  const before = input.value.slice(0, caret);
  const ticket = ++completing;
  if (before.trim() === '') return closeSuggestions();
  let list = [];
  try {
    const res = await fetch(`/api/complete?text=${encodeURIComponent(before)}`);
    if (res.ok) list = (await res.json()).completions;
  } catch {
    list = [];
  }
  if (ticket !== completing) return;
  offered = list.filter((c) => c.text !== before);
  if (offered.length === 0) return closeSuggestions();
  suggestions.replaceChildren(
    ...offered.map((c, i) => {
      const li = el('div', 'option');
      li.id = `suggestion-${i}`;
      li.setAttribute('role', 'option');
      li.append(el('span', 'label', c.label));
      if (c.detail) li.append(el('span', 'detail', c.detail));
      li.addEventListener('mousedown', (e) => {
        e.preventDefault();
        accept(i);
      });
      return li;
    }),
  );
  suggestions.hidden = false;
  input.setAttribute('aria-expanded', 'true');
  highlight(0);
}

input.addEventListener('input', () => {
  clearTimeout(completionTimer);
  completionTimer = setTimeout(complete, 60);
});
input.addEventListener('blur', () => setTimeout(closeSuggestions, 100));

input.addEventListener('keydown', (e) => {
  if (!suggestions.hidden && offered.length) {
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      const step = e.key === 'ArrowDown' ? 1 : -1;
      highlight((active + step + offered.length) % offered.length);
      return;
    }
    if (e.key === 'Tab' || (e.key === 'Enter' && active >= 0)) {
      e.preventDefault();
      accept(active);
      return;
    }
    if (e.key === 'Escape') {
      closeSuggestions();
      return;
    }
  }
  if (e.key === 'ArrowUp' && history.length && (input.value === '' || input.value === history[historyAt])) {
    e.preventDefault();
    historyAt = Math.max(0, (input.value === '' ? history.length : historyAt) - 1);
    input.value = history[historyAt];
  }
});

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  const text = input.value.trim();
  if (!text) return;
  closeSuggestions();
  clearTimeout(completionTimer);
  completing++;
  input.value = '';
  history.push(text);
  historyAt = history.length;
  appendUser(text, false);
  try {
    handleOutcome(await api('/api/command', { text }), null, 'command');
  } catch (err) {
    appendNote(`⚠️ ${err.message}`, true);
  }
});

// ---------------------------------------------------------------- remix

/** A dropped picture goes to the bot, which reads the /compose command it carries into the input box. */
async function remix(file) {
  appendUser(`› Remix ${file.name}`, true);
  try {
    const bytes = new Uint8Array(await file.arrayBuffer());
    let binary = '';
    for (let i = 0; i < bytes.length; i += 0x8000) {
      binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    }
    handleOutcome(await api('/api/remix', { image: btoa(binary) }), null, 'remix');
  } catch (err) {
    appendNote(`⚠️ ${err.message}`, true);
  }
}

const carriesFiles = (e) => [...(e.dataTransfer?.types ?? [])].includes('Files');
document.addEventListener('dragover', (e) => {
  if (!carriesFiles(e)) return;
  e.preventDefault();
  e.dataTransfer.dropEffect = 'copy';
});
document.addEventListener('drop', (e) => {
  const file = e.dataTransfer?.files?.[0];
  if (!file) return;
  e.preventDefault();
  remix(file);
});

async function start() {
  try {
    const res = await fetch('/api/status');
    setStatus(await res.json());
  } catch {
    connection.hidden = false;
  }
  welcome();
  listen();
  input.focus();
}

start();
