// SD 1.5's CLIP tokenizer: prompt → 77 ids, and which token positions each word and piece became,
// so CLoRA can bind a subject word to its tokens.

import { join } from 'node:path';
import { BytePairEncoder, byteStandIns, WORD_END } from './bpe.ts';
import { readMerges, readVocab, TokenizerFileError } from './files.ts';
import { END_OF_TEXT, normalizeWords, START_OF_TEXT, splitPieces } from './normalize.ts';

export interface WordTokens {
  word: string;
  /** Positions in the padded sequence (BOS is 0); positions cut by truncation are left out. */
  positions: number[];
  ids: number[];
  /** Present (true) when truncation cut some, but not all, of this word's tokens. */
  truncated?: true;
}

export interface PieceTokens {
  piece: string;
  positions: number[];
  ids: number[];
  truncated?: true;
}

export interface TokenizedPrompt {
  /** The prompt after clean-up (whitespace collapsed, lower case, NFC), words joined by single spaces. */
  normalized: string;
  /** BOS, at most 75 content ids, EOS, then padding: always `maxLength` long. */
  ids: number[];
  tokens: string[];
  /** True when the prompt had more than 75 content tokens and the rest were cut. */
  truncated: boolean;
  /** BOS, every content id, EOS: what the prompt would be without the 77-token limit. */
  idsUntruncated: number[];
  /** Whitespace words of the normalised prompt; words wholly cut by truncation are left out. */
  words: WordTokens[];
  /** CLIP's regex pieces; pieces wholly cut by truncation are left out. */
  pieces: PieceTokens[];
}

interface Span {
  text: string;
  start: number;
  end: number;
}

/** Tokens in every SD 1.x text-encoder input: BOS, 75 content ids, EOS (padded). */
export const CLIP_CONTEXT_LENGTH = 77;

export class ClipTokenizer {
  readonly bosId: number;
  readonly eosId: number;
  /** SD 1.5 pads with <|endoftext|>. */
  readonly padId: number;
  readonly maxLength = CLIP_CONTEXT_LENGTH;
  private readonly vocab: ReadonlyMap<string, number>;
  private readonly tokenOfId = new Map<number, string>();
  private readonly bpe: BytePairEncoder;

  /** Loads vocab.json and merges.txt; a missing or malformed file throws a TokenizerFileError naming it. */
  static fromFiles(vocabPath: string, mergesPath: string): ClipTokenizer {
    const vocab = readVocab(vocabPath);
    const merges = readMerges(mergesPath);
    const missing = missingBaseToken(vocab);
    if (missing !== undefined) {
      throw new TokenizerFileError(
        vocabPath,
        `${vocabPath} has no id for token ${JSON.stringify(missing)}, so it is not a complete CLIP vocab.json`,
      );
    }
    const unknown = unknownMergeResult(vocab, merges);
    if (unknown) {
      throw new TokenizerFileError(
        mergesPath,
        `${mergesPath} line ${unknown.line} makes token ${JSON.stringify(unknown.token)}, which ${vocabPath} has no id for; vocab.json and merges.txt must come from the same CLIP tokenizer folder`,
      );
    }
    return new ClipTokenizer(vocab, merges);
  }

  /** Loads `vocab.json` and `merges.txt` from one folder, e.g. a diffusers model's `tokenizer/`. */
  static fromDir(dir: string): ClipTokenizer {
    return ClipTokenizer.fromFiles(join(dir, 'vocab.json'), join(dir, 'merges.txt'));
  }

  /** From parsed files; every token BPE can produce must have an id (fromFiles checks that). */
  constructor(vocab: ReadonlyMap<string, number>, merges: readonly (readonly [string, string])[]) {
    this.vocab = vocab;
    for (const [token, id] of vocab) this.tokenOfId.set(id, token);
    this.bpe = new BytePairEncoder(merges);
    this.bosId = this.idOf(START_OF_TEXT);
    this.eosId = this.idOf(END_OF_TEXT);
    this.padId = this.eosId;
  }

  encode(text: string): TokenizedPrompt {
    const contentIds: number[] = [];
    const words: Span[] = [];
    const pieces: Span[] = [];
    const normalizedWords = normalizeWords(text);
    for (const word of normalizedWords) {
      const wordStart = contentIds.length;
      for (const piece of splitPieces(word)) {
        const pieceStart = contentIds.length;
        for (const token of this.tokensOfPiece(piece)) contentIds.push(this.idOf(token));
        pieces.push({ text: piece, start: pieceStart, end: contentIds.length });
      }
      words.push({ text: word, start: wordStart, end: contentIds.length });
    }

    const room = this.maxLength - 2;
    const kept = contentIds.slice(0, room);
    const ids = [this.bosId, ...kept, this.eosId];
    while (ids.length < this.maxLength) ids.push(this.padId);
    // A span wholly cut by truncation (or, rarely, one that became no token at all) is left out.
    const located = (span: Span) => {
      const end = Math.min(span.end, room);
      if (span.start >= end) return [];
      const positions = Array.from({ length: end - span.start }, (_, k) => span.start + k + 1);
      const at = { positions, ids: contentIds.slice(span.start, end) };
      return [span.end > room ? { ...at, truncated: true as const } : at];
    };

    return {
      normalized: normalizedWords.join(' '),
      ids,
      tokens: ids.map((id) => this.tokenOf(id)),
      truncated: contentIds.length > room,
      idsUntruncated: [this.bosId, ...contentIds, this.eosId],
      words: words.flatMap((span) => located(span).map((at) => ({ word: span.text, ...at }))),
      pieces: pieces.flatMap((span) => located(span).map((at) => ({ piece: span.text, ...at }))),
    };
  }

  /** The vocabulary string of an id, e.g. `cat</w>`. */
  tokenOf(id: number): string {
    const token = this.tokenOfId.get(id);
    if (token === undefined) throw new RangeError(`token id ${id} is not in the CLIP vocabulary`);
    return token;
  }

  private idOf(token: string): number {
    const id = this.vocab.get(token);
    if (id === undefined)
      throw new RangeError(`token ${JSON.stringify(token)} is not in the CLIP vocabulary`);
    return id;
  }

  // The special-token strings are whole tokens, as in CLIP, even when typed into a prompt.
  private tokensOfPiece(piece: string): string[] {
    return piece === START_OF_TEXT || piece === END_OF_TEXT ? [piece] : this.bpe.encode(piece);
  }
}

/** A special token or single-byte symbol (with and without `</w>`) the vocabulary lacks, if any. */
function missingBaseToken(vocab: ReadonlyMap<string, number>): string | undefined {
  const base = [
    START_OF_TEXT,
    END_OF_TEXT,
    ...byteStandIns().flatMap((symbol) => [symbol, symbol + WORD_END]),
  ];
  return base.find((token) => !vocab.has(token));
}

/** The first merge whose result the vocabulary lacks, with its line in merges.txt. */
function unknownMergeResult(
  vocab: ReadonlyMap<string, number>,
  merges: readonly (readonly [string, string])[],
): { token: string; line: number } | undefined {
  for (let rank = 0; rank < merges.length; rank++) {
    const token = merges[rank][0] + merges[rank][1];
    // merges.txt line 1 is the #version header, so rank r sits on line r + 2.
    if (!vocab.has(token)) return { token, line: rank + 2 };
  }
  return undefined;
}
