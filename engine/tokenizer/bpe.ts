// Byte-level byte-pair encoding as in CLIP: a piece's UTF-8 bytes become printable stand-in
// characters, the last one carries the `</w>` word end, and merges apply lowest rank first.

export const WORD_END = '</w>';

// Enough for every distinct piece of a busy bot's prompts; clearing beats tracking recency here.
const CACHE_LIMIT = 50_000;

/**
 * The stand-in character of each byte: printable Latin-1 bytes stand for themselves, the rest
 * (controls, space, soft hyphen) take code points from U+0100 up, so no token holds whitespace.
 */
export function byteStandIns(): string[] {
  const standIns = new Array<string>(256);
  let next = 256;
  for (let byte = 0; byte < 256; byte++) {
    const printable =
      (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || (byte >= 0xae && byte <= 0xff);
    standIns[byte] = String.fromCodePoint(printable ? byte : next++);
  }
  return standIns;
}

export class BytePairEncoder {
  private readonly ranks = new Map<string, number>();
  private readonly cache = new Map<string, string[]>();
  private readonly standIns = byteStandIns();
  private readonly utf8 = new TextEncoder();

  /** `merges[r]` is the pair merged at rank r (earlier merges win). */
  constructor(merges: readonly (readonly [string, string])[]) {
    merges.forEach(([left, right], rank) => {
      const key = pairKey(left, right);
      // A repeated pair keeps its last rank, as a dict built from the merge list would.
      this.ranks.set(key, rank);
    });
  }

  /** The BPE tokens of one pre-tokenizer piece, the last one ending in `</w>`. */
  encode(piece: string): string[] {
    const cached = this.cache.get(piece);
    if (cached) return cached;
    const bytes = this.utf8.encode(piece);
    if (bytes.length === 0) return [];
    let symbols = Array.from(bytes, (byte) => this.standIns[byte]);
    symbols[symbols.length - 1] += WORD_END;

    while (symbols.length > 1) {
      let best: string | undefined;
      let bestRank = Number.POSITIVE_INFINITY;
      for (let i = 0; i + 1 < symbols.length; i++) {
        const rank = this.ranks.get(pairKey(symbols[i], symbols[i + 1]));
        if (rank !== undefined && rank < bestRank) {
          bestRank = rank;
          best = pairKey(symbols[i], symbols[i + 1]);
        }
      }
      if (best === undefined) break;
      symbols = mergeAll(symbols, best);
    }

    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    this.cache.set(piece, symbols);
    return symbols;
  }
}

// Stand-in characters never include a space, so a space separates the two halves unambiguously.
function pairKey(left: string, right: string): string {
  return `${left} ${right}`;
}

/** Every non-overlapping occurrence of the pair, left to right, becomes one symbol. */
function mergeAll(symbols: string[], key: string): string[] {
  const merged: string[] = [];
  for (let i = 0; i < symbols.length; i++) {
    if (i + 1 < symbols.length && pairKey(symbols[i], symbols[i + 1]) === key) {
      merged.push(symbols[i] + symbols[i + 1]);
      i++;
    } else {
      merged.push(symbols[i]);
    }
  }
  return merged;
}
