// From a CompositionSpec to what the pipeline runs: the branch prompts (P0 with no LoRA,
// Pi with LoRA i's trigger before its subject), which LoRAs each branch uses, the concept
// groups of the contrastive loss and the tokens each LoRA's mask is read from (METHOD.md).

import type { ClipTokenizer, TokenizedPrompt } from '../tokenizer/index.ts';
import { findPhrase } from '../tokenizer/index.ts';
import type { ConceptGroups, GroupMember } from './loss.ts';
import type { CompositionSpec, LoraRef } from './spec.ts';
import { SpecError } from './spec.ts';

export interface BranchLora {
  lora: LoraRef;
  weight: number;
}

export interface Branch {
  prompt: string;
  tokens: TokenizedPrompt;
  /** LoRAs active in this branch, with their weights */
  loras: BranchLora[];
}

export interface CompositionPlan {
  /** branch 0 is the base (no subject LoRA); in CLoRA branch i ≥ 1 carries LoRA i */
  branches: Branch[];
  negative: TokenizedPrompt;
  /** concept groups over (branch, token position); empty when there is no latent update */
  groups: ConceptGroups;
  /** for each branch i ≥ 1 whose mask is read: its token positions (trigger + subject) */
  maskTokens: number[][];
  /** how branch predictions are combined: CLoRA's masks, or an equal average */
  fusion: 'masks' | 'uniform';
  update: boolean;
}

/**
 * The trigger words to put before a subject: a phrase that already ends with the subject's
 * word ("sks cat" for cat, as many LoRAs declare it) gives only its own words, so the
 * prompt reads "a sks cat", not "a sks cat cat"; a trigger that is just the word adds nothing.
 */
export function triggersBefore(word: string, triggers: readonly string[]): string[] {
  const trailing = new RegExp(`(?:^|\\s+)${wordPattern(word)}$`, 'iu');
  const words = triggers.map((t) => t.trim().replace(trailing, '').trim()).filter((t) => t !== '');
  return [...new Set(words)];
}

function insertTriggers(prompt: string, word: string, triggers: string[], occurrence = 0): string {
  if (triggers.length === 0) return prompt;
  const at = findWord(prompt, word, occurrence);
  if (at < 0) throw new SpecError(`the subject "${word}" does not appear in the prompt "${prompt}"`);
  return `${prompt.slice(0, at)}${triggers.join(' ')} ${prompt.slice(at)}`;
}

/** A word (or words) as a regular expression: special characters escaped, any run of spaces matching. */
function wordPattern(word: string): string {
  return word
    .trim()
    .replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
    .replace(/\s+/g, '\\s+');
}

/** Character index of the n-th whole-word occurrence of `word`, case-insensitive; -1 when absent. */
export function findWord(prompt: string, word: string, occurrence = 0): number {
  const re = new RegExp(`(?<![\\p{L}\\p{N}])${wordPattern(word)}(?![\\p{L}\\p{N}])`, 'giu');
  let index = -1;
  for (let i = 0; i <= occurrence; i++) {
    const m = re.exec(prompt);
    if (!m) return -1;
    index = m.index;
  }
  return index;
}

function withStyle(prompt: string, spec: CompositionSpec): string {
  const t = spec.style?.triggers ?? [];
  return t.length ? `${prompt}, ${t.join(' ')}` : prompt;
}

/** Token positions of a phrase's n-th occurrence; an error naming the phrase when it has none. */
function positionsOf(tokens: TokenizedPrompt, phrase: string, where: string, occurrence = 0): number[] {
  const found = findPhrase(tokens, phrase);
  if (found.length <= occurrence) {
    const cut = tokens.truncated
      ? ' (the prompt is longer than 75 tokens and it was cut off; shorten the prompt)'
      : '';
    throw new SpecError(`"${phrase}" has no tokens in ${where}${cut}`);
  }
  return found[occurrence];
}

export function planComposition(spec: CompositionSpec, tokenizer: ClipTokenizer): CompositionPlan {
  const style = spec.style ? [{ lora: spec.style.lora, weight: spec.style.weight }] : [];
  const branch = (prompt: string, loras: BranchLora[]): Branch => ({
    prompt,
    tokens: tokenizer.encode(prompt),
    loras,
  });
  for (const s of spec.subjects) {
    if (findWord(spec.prompt, s.word, s.occurrence) < 0) {
      throw new SpecError(
        `the subject "${s.word}" does not appear in the prompt "${spec.prompt}"; put the word in the text`,
      );
    }
  }
  const subjects = spec.subjects.map((s) => ({ ...s, triggers: triggersBefore(s.word, s.triggers) }));
  const negative = tokenizer.encode(spec.negative);
  const base = withStyle(spec.prompt, spec);
  const allTriggers = subjects.reduce(
    (p, s) => insertTriggers(p, s.word, s.triggers, s.occurrence),
    spec.prompt,
  );
  const subjectLoras = subjects.map((s) => ({ lora: s.lora, weight: s.weight }));

  if (spec.method === 'none') {
    return {
      branches: [branch(base, [])],
      negative,
      groups: [],
      maskTokens: [],
      fusion: 'uniform',
      update: false,
    };
  }
  if (spec.method === 'merge') {
    return {
      branches: [branch(withStyle(allTriggers, spec), [...subjectLoras, ...style])],
      negative,
      groups: [],
      maskTokens: [],
      fusion: 'uniform',
      update: false,
    };
  }
  if (spec.method === 'composite') {
    const prompt = withStyle(allTriggers, spec);
    const branches = subjects.map((s) => branch(prompt, [{ lora: s.lora, weight: s.weight }, ...style]));
    if (branches.length === 0) branches.push(branch(prompt, style));
    return { branches, negative, groups: [], maskTokens: [], fusion: 'uniform', update: false };
  }

  // CLoRA: P0 plus one prompt per subject LoRA.
  const branches = [
    branch(base, style),
    ...subjects.map((s) =>
      branch(withStyle(insertTriggers(spec.prompt, s.word, s.triggers, s.occurrence), spec), [
        { lora: s.lora, weight: s.weight },
        ...style,
      ]),
    ),
  ];
  const groups: GroupMember[][] = subjects.map(() => []);
  const maskTokens: number[][] = [];
  subjects.forEach((s, c) => {
    const own = branches[c + 1];
    const occurrence = s.occurrence ?? 0;
    const wordPositions = positionsOf(own.tokens, s.word, `prompt ${c + 1} ("${own.prompt}")`, occurrence);
    const triggerPositions = s.triggers.flatMap((t) =>
      positionsOf(own.tokens, t, `prompt ${c + 1} ("${own.prompt}")`),
    );
    maskTokens.push([...triggerPositions, ...wordPositions].sort((a, b) => a - b));
    branches.forEach((b, j) => {
      const positions =
        j === c + 1
          ? [...triggerPositions, ...wordPositions].sort((x, y) => x - y)
          : positionsOf(b.tokens, s.word, `prompt ${j} ("${b.prompt}")`);
      for (const position of positions) groups[c].push({ prompt: j, position });
    });
  });
  // A single subject has nothing to contrast with: its maps are only masked.
  const update = spec.guidance.update && subjects.length >= 2;
  return {
    branches,
    negative,
    groups: update ? groups : [],
    maskTokens,
    fusion: spec.guidance.mask ? 'masks' : 'uniform',
    update,
  };
}
