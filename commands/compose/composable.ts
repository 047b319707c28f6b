// What a well-formed request still needs before it may be queued: something to compose.

import { type ComposeError, type ComposeSource, composeError } from './errors.ts';
import type { ComposeRequest } from './request.ts';

/** Why the engine would refuse the request for lack of a LoRA, as an error pointing at the input. */
export function compositionProblem(request: ComposeRequest, source: ComposeSource): ComposeError | undefined {
  if (request.method === 'none' || request.bindings.length > 0 || request.style !== null) return undefined;
  const input = source.input.replace(/\s+$/, '');
  // With a --method already written, appending another would only be refused as a duplicate.
  const hasMethod = /(^|\s)(--|[‐‑‒–—―−]-?)method\b/i.test(input);
  return composeError(
    'no-binding',
    `nothing here binds a LoRA, so there is nothing to compose: bind a subject, e.g. cat:<tabby>, ` +
      `or ${hasMethod ? 'use' : 'add'} --method none to draw with the base model alone`,
    { start: 0, end: input.length },
    hasMethod ? undefined : `${input.replace(/^\s*\/compose\s*/i, '')} --method none`,
  );
}
