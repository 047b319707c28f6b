// Finding a subject word or phrase ("cat", "red panda") in a tokenized prompt, so CLoRA can bind
// it to token positions. Matching works on CLIP's pieces: case-insensitive, and punctuation
// around a word ("hat," "(cat)") does not stop it matching.

import type { PieceTokens, TokenizedPrompt } from './clip-tokenizer.ts';
import { normalizeWords, splitPieces } from './normalize.ts';

const LETTERS_OR_DIGITS = /^[\p{L}\p{N}]+$/u;
const HAS_LETTER_OR_DIGIT = /[\p{L}\p{N}]/u;

/**
 * Token positions of every occurrence of `phrase` in the prompt, in prompt order, one array per
 * occurrence. A match may not start or end inside a run of letters and digits ("cat" does not
 * match "cats", "2" does not match "2024", "k" does not match "8k"). Only tokens kept within the
 * 77-token limit are searched; an empty result on a truncated prompt may mean the phrase was cut.
 */
export function findPhrase(prompt: TokenizedPrompt, phrase: string): number[][] {
  const wanted = trimPunctuation(normalizeWords(phrase).flatMap(splitPieces));
  if (wanted.length === 0) return [];
  const wordOfPosition = new Map<number, number>();
  prompt.words.forEach((word, w) => {
    for (const position of word.positions) wordOfPosition.set(position, w);
  });
  // Two pieces fuse into one run when they share a word and both are letters or digits.
  const fused = (a: PieceTokens | undefined, b: PieceTokens | undefined) =>
    a !== undefined &&
    b !== undefined &&
    LETTERS_OR_DIGITS.test(a.piece) &&
    LETTERS_OR_DIGITS.test(b.piece) &&
    wordOfPosition.get(a.positions[0]) === wordOfPosition.get(b.positions[0]);

  const { pieces } = prompt;
  const matches: number[][] = [];
  for (let start = 0; start + wanted.length <= pieces.length; start++) {
    const end = start + wanted.length;
    if (!wanted.every((piece, k) => pieces[start + k].piece === piece)) continue;
    if (fused(pieces[start - 1], pieces[start]) || fused(pieces[end - 1], pieces[end])) continue;
    matches.push(pieces.slice(start, end).flatMap((piece) => piece.positions));
  }
  return matches;
}

/** Drops pieces without a letter or digit from both ends: "hat," looks for "hat". */
function trimPunctuation(pieces: string[]): string[] {
  let start = 0;
  let end = pieces.length;
  while (start < end && !HAS_LETTER_OR_DIGIT.test(pieces[start])) start++;
  while (end > start && !HAS_LETTER_OR_DIGIT.test(pieces[end - 1])) end--;
  return pieces.slice(start, end);
}
