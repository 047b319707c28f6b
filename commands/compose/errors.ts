// Errors a user can cause in /compose: values with a span in what they typed and, where we
// can guess it, the text that fixes it.

import type { ComposeRequest, TextSpan } from './request.ts';

export type ComposeErrorCode =
  | 'unterminated-quote'
  | 'stray-quote'
  | 'unterminated-lora'
  | 'empty-lora'
  | 'missing-subject'
  | 'bad-weight'
  | 'malformed-binding'
  | 'duplicate-subject'
  | 'duplicate-lora'
  | 'duplicate-style'
  | 'too-many-loras'
  | 'empty-prompt'
  | 'prompt-too-long'
  | 'unknown-option'
  | 'duplicate-option'
  | 'missing-option-value'
  | 'bad-option-value'
  | 'unknown-lora'
  | 'unusable-lora'
  | 'no-binding'
  | 'beyond-token-limit';

export interface ComposeError {
  code: ComposeErrorCode;
  /** One sentence a user can act on. */
  message: string;
  /** Where in the input the problem is (UTF-16 offsets). */
  span: TextSpan;
  /** Text that, put in place of `span`, fixes the input. */
  suggestion?: string;
}

/** Where each part of a parsed command sat in the input, for errors found after parsing. */
export interface BindingSource {
  /** The whole binding, e.g. `cat:<tabby>@0.8`. */
  span: TextSpan;
  subject: TextSpan;
  lora: TextSpan;
}

export interface ComposeSource {
  input: string;
  /** Parallel to `ComposeRequest.bindings`. */
  bindings: BindingSource[];
  style: BindingSource | null;
}

export type ParseResult =
  | {
      ok: true;
      request: ComposeRequest;
      source: ComposeSource;
      /** LoRA names that matched only with case, `_`, `-` and spaces folded (resolveLoras) */
      renamed?: { typed: string; lora: string }[];
    }
  | { ok: false; error: ComposeError };

export type ParseSuccess = Extract<ParseResult, { ok: true }>;

export function composeError(
  code: ComposeErrorCode,
  message: string,
  span: TextSpan,
  suggestion?: string,
): ComposeError {
  return suggestion === undefined ? { code, message, span } : { code, message, span, suggestion };
}

/** The input with the error's suggestion applied, or null when it has none. */
export function applySuggestion(input: string, error: ComposeError): string | null {
  if (error.suggestion === undefined) return null;
  return input.slice(0, error.span.start) + error.suggestion + input.slice(error.span.end);
}

const CONTEXT_CHARS = 40;

/**
 * The part of the input around the error with a caret line under the span, for a
 * monospace block in chat. Long inputs are cut to a window around the span.
 */
export function pointAtError(input: string, error: ComposeError): string {
  const flat = input.replace(/[\r\n\t]/g, ' ');
  const from = Math.max(0, error.span.start - CONTEXT_CHARS);
  const to = Math.min(flat.length, Math.max(error.span.end, error.span.start + 1) + CONTEXT_CHARS);
  const before = (from > 0 ? '…' : '') + flat.slice(from, error.span.start);
  const marked = flat.slice(error.span.start, Math.min(error.span.end, to));
  const after = flat.slice(Math.min(error.span.end, to), to) + (to < flat.length ? '…' : '');
  // Count code points, not UTF-16 units, so the caret sits under the right character.
  const width = (s: string) => [...s].length;
  const carets = '^'.repeat(Math.max(1, width(marked)));
  return `${before}${marked}${after}\n${' '.repeat(width(before))}${carets}`;
}
