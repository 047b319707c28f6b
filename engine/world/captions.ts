// Captions as the text encoder sees them: token ids, and which token positions say each
// subject (with its trigger) and the place, so training can point each subject's tokens at
// its own pixels.

import type { ClipTokenizer } from '../tokenizer/clip-tokenizer.ts';
import { findPhrase } from '../tokenizer/phrase.ts';
import { caption, PLACE_PHRASE, type Scene } from './scene.ts';

export interface CaptionTokens {
  text: string;
  ids: number[];
  /** per subject of the scene, the positions of its word, its trigger and its named look */
  subjects: number[][];
  /** positions of the place's noun ("house", "beach", "forest") */
  place: number[];
}

export function captionTokens(tokenizer: ClipTokenizer, scene: Scene): CaptionTokens {
  const text = caption(scene);
  const prompt = tokenizer.encode(text);
  const subjects = scene.subjects.map((s, i) => {
    const word = findPhrase(prompt, s.subject)[0] ?? [];
    const trigger = s.trigger ? (findPhrase(prompt, s.trigger)[0] ?? []) : [];
    // Two subjects may share a named look: each takes its own occurrence of the word.
    const earlier = scene.subjects.slice(0, i).filter((o) => o.word === s.word).length;
    const look = s.word ? (findPhrase(prompt, s.word)[earlier] ?? []) : [];
    if (word.length === 0) throw new Error(`caption '${text}': no tokens for '${s.subject}'`);
    return [...trigger, ...look, ...word];
  });
  const noun = PLACE_PHRASE[scene.place].split(' ').at(-1) as string;
  return { text, ids: [...prompt.ids], subjects, place: findPhrase(prompt, noun)[0] ?? [] };
}
