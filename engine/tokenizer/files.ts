// Reading CLIP's vocab.json and merges.txt, with errors that name the file and say what to fix.

import { readFileSync } from 'node:fs';
import { InputError } from '../errors.ts';

// CLIP uses the first 49152 - 256 - 2 merges of its file, as openai/CLIP and transformers do.
export const CLIP_MERGE_COUNT = 49152 - 256 - 2;

const WHERE_TO_FIND =
  'use the tokenizer folder of an SD 1.5 model (diffusers layout: <model>/tokenizer/vocab.json and merges.txt)';

/** A tokenizer file is missing or is not what CLIP expects; `path` names the file to fix. */
export class TokenizerFileError extends InputError {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(message);
    this.name = 'TokenizerFileError';
  }
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'not found' : `unreadable (${(error as Error).message})`;
    throw new TokenizerFileError(path, `CLIP ${what} ${reason}: ${path}; ${WHERE_TO_FIND}`);
  }
}

/** vocab.json: an object mapping each token string to its integer id. */
export function readVocab(path: string): Map<string, number> {
  const text = readText(path, 'vocabulary (vocab.json)');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new TokenizerFileError(
      path,
      `${path} is not valid JSON (${(error as Error).message}); expected CLIP's vocab.json, an object mapping tokens to ids`,
    );
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new TokenizerFileError(
      path,
      `${path} holds ${Array.isArray(parsed) ? 'an array' : String(parsed)}, not an object mapping tokens to ids; ${WHERE_TO_FIND}`,
    );
  }
  const vocab = new Map<string, number>();
  for (const [token, id] of Object.entries(parsed)) {
    if (!Number.isSafeInteger(id) || (id as number) < 0) {
      throw new TokenizerFileError(
        path,
        `${path}: token ${JSON.stringify(token)} maps to ${JSON.stringify(id)}, not a non-negative integer id; the file is damaged or not a CLIP vocab.json`,
      );
    }
    vocab.set(token, id as number);
  }
  return vocab;
}

/** merges.txt: a `#version` line, then one merge a line, two symbols separated by a space. */
export function readMerges(path: string): [string, string][] {
  const lines = readText(path, 'merge list (merges.txt)').trim().split(/\r?\n/);
  if (!lines[0].startsWith('#version')) {
    throw new TokenizerFileError(
      path,
      `${path} does not start with a "#version" line, so it is not a CLIP merges.txt; ${WHERE_TO_FIND}`,
    );
  }
  const merges: [string, string][] = [];
  for (let n = 1; n < lines.length && merges.length < CLIP_MERGE_COUNT; n++) {
    const symbols = lines[n].trim().split(/\s+/);
    if (symbols.length !== 2 || symbols[0] === '') {
      throw new TokenizerFileError(
        path,
        `${path} line ${n + 1}: expected two symbols separated by a space, got ${JSON.stringify(lines[n])}; the file is damaged or not a CLIP merges.txt`,
      );
    }
    merges.push([symbols[0], symbols[1]]);
  }
  return merges;
}
