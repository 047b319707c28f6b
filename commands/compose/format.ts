// ComposeRequest → the canonical /compose text that parses back to the same request.

import { isDeepStrictEqual } from 'node:util';
import { isBareSubject, lexCompose } from './lexer.ts';
import { COMPOSE_OPTIONS, quoteText } from './options.ts';
import { parseCompose } from './parse.ts';
import { subjectList } from './prompt.ts';
import {
  type ComposeRequest,
  type ComposeSettings,
  DEFAULT_COMPOSE_SETTINGS,
  type LoraBinding,
} from './request.ts';

/** A prompt word as typed: bare when the lexer reads it back as itself, else quoted. */
function formatWord(word: string, first: boolean): string {
  // Anything before the word keeps a leading "/compose" from being read as the command name.
  const lexed = lexCompose(first ? word : `. ${word}`);
  const token = lexed.ok ? lexed.tokens[lexed.tokens.length - 1] : undefined;
  const plain =
    lexed.ok &&
    lexed.tokens.length === (first ? 1 : 2) &&
    token?.kind === 'word' &&
    !token.quoted &&
    token.text === word;
  return plain ? word : quoteText(word);
}

function formatSubject(subject: string): string {
  return isBareSubject(subject) && subject.toLowerCase() !== 'style' ? subject : quoteText(subject);
}

/** `@w` unless the weight is 1; a whole number gets ".0" when a "." follows it in the prompt. */
function formatWeight(weight: number, tail: string): string {
  if (weight === 1) return '';
  const text = String(weight);
  return /^\d+$/.test(text) && tail.startsWith('.') ? `@${text}.0` : `@${text}`;
}

function formatBinding(binding: LoraBinding, tail: string): string {
  return `${formatSubject(binding.subject)}:<${binding.lora}>${formatWeight(binding.weight, tail)}${tail}`;
}

/** The prompt from `from` on, each remaining subject written as a binding where it sits. */
function formatPromptFrom(prompt: string, from: number, bindings: readonly LoraBinding[]): string[] {
  const parts: string[] = [];
  const words = (text: string) => {
    for (const word of text.split(' ')) if (word !== '') parts.push(formatWord(word, parts.length === 0));
  };
  let at = from;
  for (const binding of bindings) {
    words(prompt.slice(at, binding.span.start));
    const tailEnd = prompt.indexOf(' ', binding.span.end);
    const end = tailEnd === -1 ? prompt.length : tailEnd;
    parts.push(formatBinding(binding, prompt.slice(binding.span.end, end)));
    at = end;
  }
  words(prompt.slice(at));
  return parts;
}

/**
 * The prompt as the user would write it: a leading list ("a cat and a penguin …") as bare
 * bindings `cat:<…> penguin:<…> …` when that reads back the same, else each binding in place.
 */
function promptCandidates(request: ComposeRequest): string[][] {
  const { prompt, bindings } = request;
  const candidates: string[][] = [];
  for (let k = bindings.length; k >= 1; k--) {
    const run = bindings.slice(0, k);
    const list = subjectList(
      run.map((b) => b.subject),
      false,
    );
    const matches =
      prompt.startsWith(list.text) &&
      run.every((b, i) => b.span.start === list.spans[i].start && b.span.end === list.spans[i].end);
    if (!matches) continue;
    const tailEnd = prompt.indexOf(' ', list.text.length);
    const end = tailEnd === -1 ? prompt.length : tailEnd;
    const tail = prompt.slice(list.text.length, end);
    candidates.push([
      ...run.slice(0, -1).map((b) => formatBinding(b, '')),
      formatBinding(run[k - 1], tail),
      ...formatPromptFrom(prompt, end, bindings.slice(k)),
    ]);
  }
  candidates.push(formatPromptFrom(prompt, 0, bindings));
  return candidates;
}

/** The canonical command text (without "/compose"); options at their defaults are left out. */
export function formatCompose(
  request: ComposeRequest,
  settings: ComposeSettings = DEFAULT_COMPOSE_SETTINGS,
): string {
  const rest: string[] = [];
  if (request.style !== null)
    rest.push(`style:<${request.style.lora}>${formatWeight(request.style.weight, '')}`);
  for (const option of COMPOSE_OPTIONS) {
    const text = option.format(request, settings);
    if (text !== null) rest.push(text);
  }
  const candidates = promptCandidates(request);
  for (const candidate of candidates.slice(0, -1)) {
    const text = [...candidate, ...rest].join(' ');
    const back = parseCompose(text, settings);
    if (back.ok && isDeepStrictEqual(back.request, request)) return text;
  }
  return [...candidates[candidates.length - 1], ...rest].join(' ');
}
