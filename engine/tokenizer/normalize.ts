// Prompt clean-up and pre-tokenisation as transformers' slow CLIPTokenizer does them when ftfy is
// absent (its BasicTokenizer with strip_accents=False, do_split_on_punc=False), which is what
// produced SD 1.5's reference ids.

export const START_OF_TEXT = '<|startoftext|>';
export const END_OF_TEXT = '<|endoftext|>';

// Control and format characters (category C) vanish; tab, newline and return count as spaces.
const TAB_NEWLINE_RETURN = /[\t\n\r]/g;
const CONTROL_OR_REPLACEMENT = /[\p{C}\uFFFD]/gu;

// The CJK ideograph blocks BERT's clean-up treats as one-character words (kana and hangul are not among them).
const CJK_IDEOGRAPH =
  /[\u{4E00}-\u{9FFF}\u{3400}-\u{4DBF}\u{20000}-\u{2A6DF}\u{2A700}-\u{2B73F}\u{2B740}-\u{2B81F}\u{2B820}-\u{2CEAF}\u{F900}-\u{FAFF}\u{2F800}-\u{2FA1F}]/gu;

// Typed special tokens are cut out of the raw text, case-sensitively, before any clean-up.
const SPECIAL_TOKEN = /(<\|startoftext\|>|<\|endoftext\|>)/;

// CLIP's pre-tokenizer on lower-cased text. The original is compiled case-insensitive, which there
// lets ſ stand for s and keeps U+0345 (case-equal to ι) out of every branch, so it is dropped.
const PIECE =
  /<\|[sſ]tartoftext\|>|<\|endoftext\|>|'[sſ]|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|(?:(?!\u0345)[^\s\p{L}\p{N}])+/gu;

/**
 * The whitespace words of a prompt after clean-up: controls dropped, CJK ideographs split off,
 * NFC, lower case. A typed `<|startoftext|>` or `<|endoftext|>` becomes a word of its own.
 */
export function normalizeWords(text: string): string[] {
  return text
    .split(SPECIAL_TOKEN)
    .flatMap((chunk) => (chunk === START_OF_TEXT || chunk === END_OF_TEXT ? [chunk] : cleanUp(chunk)));
}

function cleanUp(text: string): string[] {
  const cleaned = text
    .replace(TAB_NEWLINE_RETURN, ' ')
    .replace(CONTROL_OR_REPLACEMENT, '')
    .replace(CJK_IDEOGRAPH, ' $& ')
    .normalize('NFC');
  return cleaned
    .split(/\s+/u)
    .filter((word) => word !== '')
    .map((word) => word.toLowerCase());
}

/** The prompt as the tokenizer sees it: its normalised words joined by single spaces. */
export function normalize(text: string): string {
  return normalizeWords(text).join(' ');
}

/** CLIP's regex pieces of one normalised word; each piece is byte-pair encoded on its own. */
export function splitPieces(word: string): string[] {
  return Array.from(word.matchAll(PIECE), (match) => match[0]);
}
