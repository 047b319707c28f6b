// Turning bound subjects into natural text: `cat:<tabby> penguin:<plush>` reads as
// "a cat and a penguin", with the offsets of each subject in the result.

import type { TextSpan } from './request.ts';

// Words that already say how many or which, so no article goes before them.
const DETERMINERS = new Set([
  'a',
  'an',
  'the',
  'this',
  'that',
  'these',
  'those',
  'my',
  'your',
  'his',
  'her',
  'its',
  'our',
  'their',
  'some',
  'any',
  'no',
  'every',
  'each',
  'both',
  'all',
  'many',
  'several',
  'few',
  'one',
  'two',
  'three',
  'four',
  'five',
  'six',
  'seven',
  'eight',
  'nine',
  'ten',
]);

function firstWord(text: string): string {
  return text.split(' ', 1)[0].toLowerCase();
}

/** True when `text` starts with a determiner or a number ("the dog", "two cats", "3 owls"). */
export function startsWithDeterminer(text: string): boolean {
  const word = firstWord(text);
  return DETERMINERS.has(word) || /^\p{N}/u.test(word);
}

export function isDeterminer(word: string): boolean {
  return DETERMINERS.has(word.toLowerCase()) || /^\p{N}+$/u.test(word);
}

// Vowel letters that sound like a consonant ("a unicorn", "a one-eyed cat", "a European").
const VOWEL_LETTER_CONSONANT_SOUND = /^(uni|use|usu|uti|ura|ure|uro|uku|ubi|eu|ewe|one|once)/;
// Silent h ("an hour", "an honest").
const SILENT_H = /^(hour|honest|honou?r|heir)/;

/** "a" or "an" for the word that follows, by how it sounds rather than how it is spelt. */
export function indefiniteArticle(word: string): 'a' | 'an' {
  const w = word.toLowerCase();
  const digits = /^\d+/.exec(w)?.[0];
  // Read in groups of three: "an 8", "an 11", "an 18,000", but "a 110".
  if (digits !== undefined)
    return /^8/.test(digits) || (/^1[18]/.test(digits) && digits.length % 3 === 2) ? 'an' : 'a';
  if (SILENT_H.test(w)) return 'an';
  if (VOWEL_LETTER_CONSONANT_SOUND.test(w)) return 'a';
  return /^[aeiou]/.test(w) ? 'an' : 'a';
}

/** The subject as it reads in a list: with an article unless it has a determiner already. */
function withArticle(subject: string): { text: string; offset: number } {
  if (startsWithDeterminer(subject)) return { text: subject, offset: 0 };
  const article = indefiniteArticle(subject);
  return { text: `${article} ${subject}`, offset: article.length + 1 };
}

/**
 * A run of subjects as natural text: "a cat", "a cat and a penguin",
 * "a cat, a dog and a penguin". When the word before the run is already a determiner
 * ("the cat:<…> dog:<…>"), the first subject gets no article of its own.
 */
export function subjectList(
  subjects: readonly string[],
  afterDeterminer: boolean,
): { text: string; spans: TextSpan[] } {
  let text = '';
  const spans: TextSpan[] = [];
  subjects.forEach((subject, i) => {
    if (i > 0) text += i === subjects.length - 1 ? ' and ' : ', ';
    const item = i === 0 && afterDeterminer ? { text: subject, offset: 0 } : withArticle(subject);
    const start = text.length + item.offset;
    spans.push({ start, end: start + subject.length });
    text += item.text;
  });
  return { text, spans };
}
