// The tokenizer's public surface: SD 1.5's CLIP BPE and the word → token-position mapping CLoRA needs.

export {
  CLIP_CONTEXT_LENGTH,
  ClipTokenizer,
  type PieceTokens,
  type TokenizedPrompt,
  type WordTokens,
} from './clip-tokenizer.ts';
export { CLIP_MERGE_COUNT, TokenizerFileError } from './files.ts';
export { normalize, normalizeWords, splitPieces } from './normalize.ts';
export { findPhrase } from './phrase.ts';
