// /compose text → a normalised ComposeRequest, or the first problem in it as a value.

import { type BindingSource, type ComposeError, composeError, type ParseResult } from './errors.ts';
import {
  type BindingToken,
  collapseWhitespace,
  lexCompose,
  type OptionToken,
  type WordToken,
} from './lexer.ts';
import { type ComposeOption, type ComposeOptionValues, closestOptions, findOption } from './options.ts';
import { isDeterminer, subjectList } from './prompt.ts';
import {
  type ComposeRequest,
  type ComposeSettings,
  DEFAULT_COMPOSE_SETTINGS,
  type TextSpan,
} from './request.ts';

type PromptItem = WordToken | BindingToken;

function fail(error: ComposeError): ParseResult {
  return { ok: false, error };
}

/**
 * The prompt text with each subject's place in it. A run of bindings at the start of the
 * prompt, or two or more anywhere, reads as a list with articles ("a cat and a penguin");
 * a single binding inside a sentence keeps the user's wording.
 */
function buildPrompt(items: readonly PromptItem[]): { prompt: string; spans: Map<BindingToken, TextSpan> } {
  let prompt = '';
  const spans = new Map<BindingToken, TextSpan>();
  const append = (text: string): number => {
    if (prompt !== '') prompt += ' ';
    const start = prompt.length;
    prompt += text;
    return start;
  };
  let i = 0;
  while (i < items.length) {
    const item = items[i];
    if (item.kind === 'word') {
      append(item.text);
      i++;
      continue;
    }
    // Punctuation glued to a binding ends its run: "cat:<a>, dog:<b>" is not one list.
    let j = i;
    while (j + 1 < items.length && (items[j] as BindingToken).tail === '' && items[j + 1].kind === 'binding')
      j++;
    const run = items.slice(i, j + 1) as BindingToken[];
    if (run.length === 1 && i > 0) {
      const start = append(item.subject);
      spans.set(item, { start, end: start + item.subject.length });
    } else {
      const before = items[i - 1];
      const list = subjectList(
        run.map((b) => b.subject),
        before?.kind === 'word' && isDeterminer(before.text),
      );
      const start = append(list.text);
      run.forEach((b, k) => {
        spans.set(b, { start: start + list.spans[k].start, end: start + list.spans[k].end });
      });
    }
    prompt += run[run.length - 1].tail;
    i = j + 1;
  }
  return { prompt, spans };
}

function bindingSource(token: BindingToken): BindingSource {
  return { span: token.span, subject: token.subjectSpan, lora: token.loraSpan };
}

/** The value an option takes from the tokens after it; `next` is the index of the first unused token. */
function optionValue(
  option: ComposeOption,
  token: OptionToken,
  tokens: readonly (PromptItem | OptionToken)[],
  t: number,
): { value: WordToken | null; next: number } {
  if (token.value !== null || option.takes === 'flag') return { value: token.value, next: t + 1 };
  const first = tokens[t + 1];
  if (first?.kind !== 'word') return { value: null, next: t + 1 };
  if (option.takes === 'word' || first.quoted) return { value: first, next: t + 2 };
  let last = t + 1;
  while (tokens[last + 1]?.kind === 'word') last++;
  const words = tokens.slice(t + 1, last + 1) as WordToken[];
  return {
    value: {
      kind: 'word',
      text: collapseWhitespace(words.map((w) => w.text).join(' ')),
      quoted: false,
      span: { start: first.span.start, end: words[words.length - 1].span.end },
    },
    next: last + 1,
  };
}

const SIZE_SEPARATOR = /^[x×X*]$/;

/**
 * `--size 256 x 256` (or `256 x256`, `256x 256`) spread over several words: one size, never
 * words left in the prompt. A size that starts to spread but cannot be read is refused.
 */
function spreadSize(
  value: WordToken,
  tokens: readonly (PromptItem | OptionToken)[],
  next: number,
): { value: WordToken; next: number } | { error: ComposeError } {
  const word = (k: number) => {
    const w = tokens[k];
    return w?.kind === 'word' && !w.quoted ? w : undefined;
  };
  const [w1, w2] = [word(next), word(next + 1)];
  const joined = (parts: WordToken[]): { value: WordToken; next: number } => ({
    value: {
      kind: 'word',
      text: parts.map((p) => p.text).join(''),
      quoted: false,
      span: { start: parts[0].span.start, end: parts[parts.length - 1].span.end },
    },
    next: next + parts.length - 1,
  });
  const digits = (w: WordToken | undefined) => w !== undefined && /^\d+$/.test(w.text);
  if (digits(value) && w1 && /^[x×X*]\d+$/.test(w1.text)) return joined([value, w1]);
  if (digits(value) && w1 && SIZE_SEPARATOR.test(w1.text) && digits(w2)) return joined([value, w1, w2!]);
  if (/^\d+[x×X*]$/.test(value.text) && digits(w1)) return joined([value, w1!]);
  const dangling = /^\d+[x×X*]$/.test(value.text)
    ? value
    : digits(value) && w1 && /^[x×X*](\d|$)/.test(w1.text)
      ? w1
      : undefined;
  if (dangling) {
    return {
      error: composeError(
        'bad-option-value',
        '--size is width x height with nothing else between, e.g. --size 512x768',
        { start: value.span.start, end: dangling.span.end },
      ),
    };
  }
  return { value, next };
}

export function parseCompose(
  input: string,
  settings: ComposeSettings = DEFAULT_COMPOSE_SETTINGS,
): ParseResult {
  const lexed = lexCompose(input);
  if (!lexed.ok) return lexed;
  const tokens = lexed.tokens;
  const { limits, defaults } = settings;

  const values: ComposeOptionValues = { ...defaults, seed: null };
  const seenOptions = new Map<ComposeOption, OptionToken>();
  const items: PromptItem[] = [];
  const bindings: BindingToken[] = [];
  let style: BindingToken | null = null;
  const subjects = new Map<string, BindingToken>();
  const loras = new Map<string, BindingToken>();
  let textOptionTookWords = false;

  let t = 0;
  while (t < tokens.length) {
    const token = tokens[t];
    if (token.kind === 'option') {
      const option = findOption(token.name);
      if (option === undefined) {
        const near = closestOptions(token.name);
        const written = input.slice(token.span.start, token.span.end);
        const asText = `; if ${written} is prompt text, quote it: "${written}"`;
        return fail(
          composeError(
            'unknown-option',
            near.length > 0
              ? `unknown option ${written} — did you mean ${near.map((n) => `--${n}`).join(' or ')}?`
              : `unknown option ${written}: see /compose help for the options${asText}`,
            token.span,
            near.length > 0 ? `--${near[0]}` : undefined,
          ),
        );
      }
      if (option.takes === 'flag' && token.value !== null) {
        return fail(
          composeError(
            'bad-option-value',
            `--${token.name} takes no value: write just --${token.name}`,
            { start: token.span.start, end: token.value.span.end },
            `--${token.name}`,
          ),
        );
      }
      let { value, next } = optionValue(option, token, tokens, t);
      if (option.name === 'size' && value !== null && !value.quoted) {
        const spread = spreadSize(value, tokens, next);
        if ('error' in spread) return fail(spread.error);
        ({ value, next } = spread);
      }
      const earlier = seenOptions.get(option);
      if (earlier !== undefined) {
        const message =
          earlier.name === token.name
            ? `--${token.name} is given twice: keep one`
            : `--${earlier.name} and --${token.name} set the same thing: keep one`;
        return fail(
          composeError('duplicate-option', message, {
            start: token.span.start,
            end: value?.span.end ?? token.span.end,
          }),
        );
      }
      seenOptions.set(option, token);
      if (value === null && option.takes !== 'flag') {
        return fail(
          composeError('missing-option-value', `--${token.name} needs a value: ${option.usage}`, token.span),
        );
      }
      if (option.takes === 'text' && value !== null && !value.quoted) textOptionTookWords = true;
      const read = option.read(value?.text ?? '', settings, token.name);
      if (!read.ok) {
        return fail(
          composeError('bad-option-value', read.message, value?.span ?? token.span, read.suggestion),
        );
      }
      Object.assign(values, read.set);
      t = next;
      continue;
    }
    t++;
    if (token.kind === 'word') {
      if (token.text !== '') items.push(token);
      continue;
    }

    if (token.weight !== null && !(token.weight >= limits.minWeight && token.weight <= limits.maxWeight)) {
      const clamped = Math.min(limits.maxWeight, Math.max(limits.minWeight, token.weight));
      return fail(
        composeError(
          'bad-weight',
          `weight ${input.slice(token.weightSpan!.start + 1, token.weightSpan!.end)} is out of range: use ${limits.minWeight} to ${limits.maxWeight}`,
          token.weightSpan!,
          `@${clamped}`,
        ),
      );
    }
    const isStyle = !token.subjectQuoted && token.subject.toLowerCase() === 'style';
    if (isStyle && style !== null) {
      return fail(
        composeError(
          'duplicate-style',
          `only one style LoRA per image: '${style.lora}' is already the style`,
          token.span,
        ),
      );
    }
    const subjectKey = token.subject.toLowerCase();
    const twin = subjects.get(subjectKey);
    if (!isStyle && twin !== undefined) {
      return fail(
        composeError(
          'duplicate-subject',
          `'${token.subject}' is bound twice (to '${twin.lora}' and '${token.lora}'): bind each subject once`,
          token.subjectSpan,
        ),
      );
    }
    const loraKey = token.lora.toLowerCase();
    const sharer = loras.get(loraKey);
    if (sharer !== undefined) {
      const owner = (b: BindingToken) =>
        !b.subjectQuoted && b.subject.toLowerCase() === 'style' ? 'the style' : `'${b.subject}'`;
      return fail(
        composeError(
          'duplicate-lora',
          `LoRA '${token.lora}' is bound to both ${owner(sharer)} and ${owner(token)}: each LoRA draws one subject`,
          token.loraSpan,
        ),
      );
    }
    const count = bindings.length + (style === null ? 0 : 1) + 1;
    if (count > limits.maxLoras) {
      return fail(
        composeError(
          'too-many-loras',
          `too many LoRAs: at most ${limits.maxLoras} per image, and this is number ${count}`,
          token.span,
        ),
      );
    }
    loras.set(loraKey, token);
    if (isStyle) {
      style = token;
    } else {
      subjects.set(subjectKey, token);
      bindings.push(token);
      items.push(token);
    }
  }

  const { prompt, spans } = buildPrompt(items);
  if (prompt === '') {
    return fail(
      composeError(
        'empty-prompt',
        textOptionTookWords
          ? 'the prompt is empty: --neg took the words after it; quote its value, e.g. --neg "blurry"'
          : 'the prompt is empty: describe the picture, e.g. cat:<tabby> penguin:<plush> in a house',
        { start: 0, end: input.length },
      ),
    );
  }
  if (prompt.length > limits.maxPromptLength) {
    return fail(
      composeError(
        'prompt-too-long',
        `the prompt is ${prompt.length} characters long: keep it under ${limits.maxPromptLength}`,
        { start: items[0].span.start, end: items[items.length - 1].span.end },
      ),
    );
  }

  const request: ComposeRequest = {
    prompt,
    bindings: bindings.map((b) => ({
      subject: b.subject,
      lora: b.lora,
      weight: b.weight ?? 1,
      span: spans.get(b)!,
    })),
    style: style === null ? null : { lora: style.lora, weight: style.weight ?? 1 },
    ...values,
  };
  return {
    ok: true,
    request,
    source: {
      input,
      bindings: bindings.map(bindingSource),
      style: style === null ? null : bindingSource(style),
    },
  };
}
