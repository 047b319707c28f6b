// Splits /compose input into words, subject–LoRA bindings and options, each with its span.
// Bindings and options start a word; quotes ("…", “…”) group words and escape syntax.

import { type ComposeError, composeError } from './errors.ts';
import type { TextSpan } from './request.ts';

export interface WordToken {
  kind: 'word';
  /** Quoted words are unescaped and their whitespace collapsed. */
  text: string;
  quoted: boolean;
  span: TextSpan;
}

export interface BindingToken {
  kind: 'binding';
  subject: string;
  /** A quoted subject is never the `style` keyword. */
  subjectQuoted: boolean;
  lora: string;
  /** The number after `@`, unchecked against limits; null when none was written. */
  weight: number | null;
  /** Punctuation glued to the binding (`cat:<tabby>,`): it follows the subject in the prompt. */
  tail: string;
  span: TextSpan;
  subjectSpan: TextSpan;
  loraSpan: TextSpan;
  weightSpan: TextSpan | null;
}

export interface OptionToken {
  kind: 'option';
  /** As written, without the dashes: `seed` for `--seed=3`. */
  name: string;
  span: TextSpan;
  /** The value after `=`; null when the option was written without one. */
  value: WordToken | null;
}

export type Token = WordToken | BindingToken | OptionToken;

export type LexResult = { ok: true; tokens: Token[] } | { ok: false; error: ComposeError };

const QUOTES = new Set(['"', '“', '”']);
// "--" as typed, or what phone keyboards make of it (em dash, en dash, minus sign, …).
const OPTION_DASHES = /(?:--|[‐‑‒–—―−]-?|-[‐‑‒–—―−])(?=\p{L})/uy;
const WHITESPACE = /\s/;
const COMMAND_NAME = /^\s*\/compose(?=\s|$)/i;
const BARE_SUBJECT = /[\p{L}\p{N}_][\p{L}\p{M}\p{N}_'’-]*/uy;
// A bare `subject:lora` binds only between letters, so times and ratios (10:30, 16:9) stay text.
const BARE_BINDING_START = /\p{L}/u;
const BARE_LORA = /[\p{L}\p{N}_][\p{L}\p{M}\p{N}_.-]*/uy;
// A digit must follow a decimal point, so the full stop in "cat:<tabby>@1." stays in the prompt.
const WEIGHT = /(?:\d+(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?/y;
/** Characters that may be glued to the end of a binding and stay in the prompt. */
const TAIL_START = new Set([...',.;:!?)]}\'’"”…—–-']);
const SUBJECT_CHAR = /[\p{L}\p{M}\p{N}_'’-]/u;

export function collapseWhitespace(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/** A name that `<…>` can carry: not empty, single spaces, no angle brackets or quotes. */
export function isWritableLoraName(name: string): boolean {
  return name !== '' && name === collapseWhitespace(name) && !/[<>"“”]/.test(name);
}

/** `text` is a bare subject: no quotes needed. */
export function isBareSubject(text: string): boolean {
  BARE_SUBJECT.lastIndex = 0;
  const m = BARE_SUBJECT.exec(text);
  return m !== null && m[0].length === text.length;
}

/** The whole character (code point) at `i`, so astral letters test as letters. */
function charAt(input: string, i: number): string {
  const code = input.codePointAt(i);
  return code === undefined ? '' : String.fromCodePoint(code);
}

function chunkEnd(input: string, from: number): number {
  let i = from;
  while (i < input.length && !WHITESPACE.test(input[i])) i++;
  return i;
}

function matchAt(pattern: RegExp, input: string, at: number): string | null {
  pattern.lastIndex = at;
  return pattern.exec(input)?.[0] ?? null;
}

/** `text` with a space put before a binding that does not start a word, or null if none. */
function spaceBeforeGluedBinding(text: string): string | null {
  const colon = text.indexOf(':<');
  if (colon <= 0) return null;
  let start = colon;
  while (start > 0 && SUBJECT_CHAR.test(text[start - 1])) start--;
  if (start === 0 || start === colon) return null;
  return `${text.slice(0, start)} ${text.slice(start)}`;
}

/** A quote inside a word (`c"`, or `"a "b`): the text cannot be read cleanly, so say where. */
function strayQuote(input: string, from: number, to: number): ComposeError | undefined {
  for (let i = from; i < to; i++) {
    if (!QUOTES.has(input[i])) continue;
    return composeError(
      'stray-quote',
      'this quote sits inside a word, so where the quoted text starts and ends is unclear: ' +
        'quote whole words ("like this"), and write a quote inside quoted text as \\"',
      { start: i, end: i + 1 },
    );
  }
  return undefined;
}

type Step<T> = { ok: true; value: T; end: number } | { ok: false; error: ComposeError };

function readQuoted(input: string, start: number): Step<string> {
  let text = '';
  let i = start + 1;
  while (i < input.length) {
    const c = input[i];
    if (c === '\\' && i + 1 < input.length && (QUOTES.has(input[i + 1]) || input[i + 1] === '\\')) {
      text += input[i + 1];
      i += 2;
    } else if (QUOTES.has(c)) {
      return { ok: true, value: text, end: i + 1 };
    } else {
      text += c;
      i++;
    }
  }
  return { ok: false, error: unterminatedQuote(input, start) };
}

function unterminatedQuote(input: string, start: number): ComposeError {
  const rest = input.slice(start);
  // Guess where the quote was meant to close: before a binding's colon or before the next option.
  const binding = rest.indexOf(':<');
  const option = rest.search(/\s--\p{L}/u);
  const close = [binding, option].filter((i) => i > 0).sort((a, b) => a - b)[0] ?? rest.length;
  const closed = rest.slice(0, close).trimEnd();
  return composeError(
    'unterminated-quote',
    'this quote is never closed: add a closing " after the quoted words',
    { start, end: start + closed.length },
    `${closed}"`,
  );
}

function readBinding(
  input: string,
  start: number,
  subject: string,
  subjectQuoted: boolean,
  subjectSpan: TextSpan,
  colon: number,
): Step<BindingToken> {
  let i = colon + 1;
  let lora: string;
  let loraSpan: TextSpan;
  if (input[i] === '<') {
    let close = i + 1;
    while (close < input.length && input[close] !== '>' && input[close] !== '<' && input[close] !== '\n') {
      if (QUOTES.has(input[close])) break;
      close++;
    }
    if (input[close] !== '>') {
      const end = Math.min(close, chunkEnd(input, i));
      const name = input.slice(i, end);
      return {
        ok: false,
        error: composeError(
          'unterminated-lora',
          `the LoRA name ${name} is missing its closing '>'`,
          { start: i, end },
          `${name}>`,
        ),
      };
    }
    lora = collapseWhitespace(input.slice(i + 1, close));
    loraSpan = { start: i, end: close + 1 };
    if (lora === '') {
      return {
        ok: false,
        error: composeError(
          'empty-lora',
          `'${subject}' is bound to an empty LoRA name: put the LoRA's name between < and >`,
          loraSpan,
        ),
      };
    }
    i = close + 1;
  } else {
    const bare = matchAt(BARE_LORA, input, i)!.replace(/[.-]+$/, '');
    lora = bare;
    loraSpan = { start: i, end: i + bare.length };
    i += bare.length;
  }

  let weight: number | null = null;
  let weightSpan: TextSpan | null = null;
  if (input[i] === '@') {
    const text = matchAt(WEIGHT, input, i + 1);
    if (text === null) {
      const end = chunkEnd(input, i);
      return {
        ok: false,
        error: composeError(
          'bad-weight',
          `'${input.slice(i, end)}' is not a weight: write a number after @, e.g. ${input.slice(start, i)}@0.8`,
          { start: i, end },
        ),
      };
    }
    const after = i + 1 + text.length;
    // "@.5.5" or "@1.2x": a number that goes on is not a weight plus prompt text.
    if (/[\p{L}\p{N}_]/u.test(charAt(input, after)) || /^\.[\d.]/.test(input.slice(after, after + 2))) {
      const end = chunkEnd(input, i);
      return {
        ok: false,
        error: composeError(
          'bad-weight',
          `'${input.slice(i, end)}' is not a weight: write one number after @, e.g. ${input.slice(start, i)}@0.8`,
          { start: i, end },
          `@${text}`,
        ),
      };
    }
    weight = Number(text);
    weightSpan = { start: i, end: after };
    i = weightSpan.end;
  }

  const end = chunkEnd(input, i);
  const tail = input.slice(i, end);
  const bindingText = input.slice(start, i);
  const quote = strayQuote(input, i, end);
  if (quote) return { ok: false, error: quote };
  if (tail !== '' && (!TAIL_START.has(tail[0]) || tail.includes(':<'))) {
    const fixed = TAIL_START.has(tail[0]) ? spaceBeforeGluedBinding(tail) : ` ${tail}`;
    return {
      ok: false,
      error: composeError(
        'malformed-binding',
        `put a space after ${bindingText}: '${tail}' is glued to it`,
        { start, end },
        fixed === null ? undefined : bindingText + fixed,
      ),
    };
  }
  return {
    ok: true,
    value: {
      kind: 'binding',
      subject,
      subjectQuoted,
      lora,
      weight,
      tail,
      span: { start, end: i },
      subjectSpan,
      loraSpan,
      weightSpan,
    },
    end,
  };
}

function readOption(input: string, start: number, dashes: number): Step<OptionToken> {
  const end = chunkEnd(input, start);
  const eq = input.indexOf('=', start);
  const nameEnd = eq !== -1 && eq < end ? eq : end;
  const token: OptionToken = {
    kind: 'option',
    name: input.slice(start + dashes, nameEnd),
    span: { start, end: nameEnd },
    value: null,
  };
  if (nameEnd === end) return { ok: true, value: token, end };
  const valueStart = nameEnd + 1;
  if (QUOTES.has(input[valueStart])) {
    const quoted = readQuoted(input, valueStart);
    if (!quoted.ok) return quoted;
    const valueEnd = chunkEnd(input, quoted.end);
    const quote = strayQuote(input, quoted.end, valueEnd);
    if (quote) return { ok: false, error: quote };
    token.value = {
      kind: 'word',
      text: collapseWhitespace(quoted.value) + input.slice(quoted.end, valueEnd),
      quoted: true,
      span: { start: valueStart, end: valueEnd },
    };
    return { ok: true, value: token, end: valueEnd };
  }
  const quote = strayQuote(input, valueStart, end);
  if (quote) return { ok: false, error: quote };
  token.value = {
    kind: 'word',
    text: input.slice(valueStart, end),
    quoted: false,
    span: { start: valueStart, end },
  };
  return { ok: true, value: token, end };
}

function readChunk(input: string, start: number): Step<Token> {
  const c = input[start];
  if (QUOTES.has(c)) {
    const quoted = readQuoted(input, start);
    if (!quoted.ok) return quoted;
    const text = collapseWhitespace(quoted.value);
    const after = quoted.end;
    if (
      input[after] === ':' &&
      (input[after + 1] === '<' || BARE_BINDING_START.test(charAt(input, after + 1)))
    ) {
      const subjectSpan = { start, end: after };
      if (text === '') {
        return {
          ok: false,
          error: composeError('missing-subject', 'the quoted subject is empty: put its words in the quotes', {
            start,
            end: after,
          }),
        };
      }
      return readBinding(input, start, text, true, subjectSpan, after);
    }
    const end = chunkEnd(input, after);
    const quote = strayQuote(input, after, end);
    if (quote) return { ok: false, error: quote };
    return {
      ok: true,
      value: { kind: 'word', text: text + input.slice(after, end), quoted: true, span: { start, end } },
      end,
    };
  }
  const dashes = matchAt(OPTION_DASHES, input, start);
  if (dashes !== null) return readOption(input, start, dashes.length);

  const subject = matchAt(BARE_SUBJECT, input, start);
  if (subject !== null) {
    const colon = start + subject.length;
    const next = charAt(input, colon + 1);
    const bare = BARE_BINDING_START.test(charAt(subject, 0)) && BARE_BINDING_START.test(next);
    if (input[colon] === ':' && (next === '<' || bare)) {
      return readBinding(input, start, subject, false, { start, end: colon }, colon);
    }
  }

  const end = chunkEnd(input, start);
  const text = input.slice(start, end);
  const quote = strayQuote(input, start, end);
  if (quote) return { ok: false, error: quote };
  if (c === ':' && input[start + 1] === '<') {
    return {
      ok: false,
      error: composeError(
        'missing-subject',
        `${text} has no subject: write the word it should draw before the colon, e.g. cat${text}`,
        { start, end },
      ),
    };
  }
  if (text.includes(':<')) {
    const fixed = spaceBeforeGluedBinding(text);
    return {
      ok: false,
      error: composeError(
        'malformed-binding',
        fixed === null
          ? `'${text}' looks like a binding but has no subject: write subject:<lora>, e.g. cat:<tabby>`
          : `a binding must start a word: put a space before it, as in '${fixed}'`,
        { start, end },
        fixed ?? undefined,
      ),
    };
  }
  return { ok: true, value: { kind: 'word', text, quoted: false, span: { start, end } }, end };
}

/** The tokens of a /compose command; a leading "/compose" is skipped. */
export function lexCompose(input: string): LexResult {
  const tokens: Token[] = [];
  let i = COMMAND_NAME.exec(input)?.[0].length ?? 0;
  for (;;) {
    while (i < input.length && WHITESPACE.test(input[i])) i++;
    if (i >= input.length) return { ok: true, tokens };
    const step = readChunk(input, i);
    if (!step.ok) return step;
    tokens.push(step.value);
    i = step.end;
  }
}
