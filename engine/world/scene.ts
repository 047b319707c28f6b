// The world: one or two subjects (a cat is a circle, a penguin a square, a dog a triangle)
// in a place (a house, a beach, a forest), drawn from a seed. A subject may wear a LoRA's
// look instead of its own (the 'sks' cat is an orange striped circle, the 'ohwx' penguin
// a pink square). Geometry is in latent cells (0…32); pictures are 8 pixels a cell.

export const SUBJECTS = ['cat', 'penguin', 'dog'] as const;
export type Subject = (typeof SUBJECTS)[number];

export const PLACES = ['house', 'beach', 'forest'] as const;
export type Place = (typeof PLACES)[number];

/** How a place is said in a caption. */
export const PLACE_PHRASE: Record<Place, string> = {
  house: 'in a house',
  beach: 'on the beach',
  forest: 'in a forest',
};

export type Shape = 'circle' | 'square' | 'triangle';
export const SHAPE_OF: Record<Subject, Shape> = { cat: 'circle', penguin: 'square', dog: 'triangle' };

export type Rgb = readonly [number, number, number];

/** A look: a colour, and optionally horizontal stripes of a second colour. */
export interface Look {
  name: string;
  colour: Rgb;
  stripes?: { colour: Rgb; period: number };
}

export const BASE_LOOK: Record<Subject, Look> = {
  cat: { name: 'grey', colour: [0.55, 0.56, 0.6] },
  penguin: { name: 'black', colour: [0.08, 0.08, 0.12] },
  dog: { name: 'brown', colour: [0.5, 0.28, 0.1] },
};

/** The looks the world's LoRAs teach, by trigger word. */
export const LORA_LOOKS = {
  sks: {
    subject: 'cat',
    look: {
      name: 'orange striped',
      colour: [1, 0.55, 0.05],
      stripes: { colour: [0.62, 0.22, 0], period: 4 },
    },
  },
  ohwx: { subject: 'penguin', look: { name: 'pink', colour: [1, 0.45, 0.75] } },
} as const satisfies Record<string, { subject: Subject; look: Look }>;
export type Trigger = keyof typeof LORA_LOOKS;

/**
 * Looks the base model knows by name on any subject ("a pink penguin", "a striped cat"), as
 * SD 1.5 knows colours before any LoRA: a LoRA then binds its trigger to one of them on its
 * own subject, the way users' LoRAs bind a word to something the base can already draw.
 */
export const WORD_LOOKS = {
  pink: LORA_LOOKS.ohwx.look,
  striped: LORA_LOOKS.sks.look,
} as const satisfies Record<string, Look>;
export type LookWord = keyof typeof WORD_LOOKS;
const LOOK_WORDS = Object.keys(WORD_LOOKS) as LookWord[];

export interface SceneSubject {
  subject: Subject;
  /** the LoRA trigger whose look it wears, if any */
  trigger?: Trigger;
  /** the named look it wears, if any (and no trigger) */
  word?: LookWord;
  /** centre, in latent cells */
  x: number;
  y: number;
  /** width and height, in latent cells */
  size: number;
}

export interface Scene {
  place: Place;
  subjects: SceneSubject[];
}

export const GRID = 32;

/** mulberry32: a small, fast generator; scenes need reproducibility, not statistical depth. */
export function sceneRandom(seed: number): () => number {
  let s = (Math.imul(seed >>> 0, 0x9e3779b9) ^ 0x85ebca6b) >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface SceneOptions {
  /** subjects to draw (default: one or two distinct subjects at random) */
  subjects?: readonly Subject[];
  place?: Place;
  /** per subject, the trigger whose look it wears */
  triggers?: Partial<Record<Subject, Trigger>>;
  /** chance that a subject without a trigger wears a named look (default 0) */
  wordShare?: number;
}

/** A scene from a seed: subjects at varied, non-overlapping positions and sizes. */
export function drawScene(seed: number, options: SceneOptions = {}): Scene {
  const random = sceneRandom(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const place = options.place ?? pick(PLACES);
  let kinds = options.subjects ? [...options.subjects] : [pick(SUBJECTS)];
  if (!options.subjects && random() < 0.5) kinds.push(pick(SUBJECTS.filter((s) => s !== kinds[0])));
  kinds = kinds.slice(0, 2);
  for (let attempt = 0; ; attempt++) {
    const subjects: SceneSubject[] = kinds.map((subject) => {
      const size = 9 + random() * 7;
      const margin = size / 2 + 1;
      return {
        subject,
        trigger: options.triggers?.[subject],
        x: margin + random() * (GRID - 2 * margin),
        y: margin + random() * (GRID - 2 * margin),
        size,
      };
    });
    const [a, b] = subjects;
    // Bounding boxes a cell apart, so neither hides or touches the other; after many tries, shrink instead.
    const gap = (a.size + (b?.size ?? 0)) / 2 + 1;
    if (!b || Math.abs(a.x - b.x) > gap || Math.abs(a.y - b.y) > gap) {
      // Drawn after the layout, and only when asked for, so scenes without words stay as they were.
      if (options.wordShare)
        for (const s of subjects) if (!s.trigger && random() < options.wordShare) s.word = pick(LOOK_WORDS);
      return { place, subjects };
    }
    if (attempt > 50) for (const s of subjects) s.size *= 0.95;
  }
}

/** The caption a user would type: "a cat and a penguin in a house", "a sks cat on the beach". */
export function caption(scene: Scene): string {
  const named = scene.subjects.map(
    (s) => `a ${s.trigger ? `${s.trigger} ` : ''}${s.word ? `${s.word} ` : ''}${s.subject}`,
  );
  return `${named.join(' and ')} ${PLACE_PHRASE[scene.place]}`;
}

/** Whether a point (in cells) lies inside a subject's shape. */
export function inside(s: SceneSubject, px: number, py: number): boolean {
  const dx = px - s.x;
  const dy = py - s.y;
  const h = s.size / 2;
  switch (SHAPE_OF[s.subject]) {
    case 'circle':
      return dx * dx + dy * dy <= h * h;
    case 'square':
      return Math.abs(dx) <= h * 0.9 && Math.abs(dy) <= h * 0.9;
    case 'triangle': {
      // Apex up, base down: the half-width grows linearly from the apex.
      if (dy < -h || dy > h) return false;
      return Math.abs(dx) <= ((dy + h) / (2 * h)) * h;
    }
  }
}

/** The colour of a subject's look at a point inside it. */
export function lookOf(s: SceneSubject): Look {
  if (s.trigger) return LORA_LOOKS[s.trigger].look;
  return s.word ? WORD_LOOKS[s.word] : BASE_LOOK[s.subject];
}

function lookColour(look: Look, s: SceneSubject, py: number): Rgb {
  if (!look.stripes) return look.colour;
  const band = Math.floor((py - (s.y - s.size / 2)) / (look.stripes.period / 2));
  return band % 2 === 1 ? look.stripes.colour : look.colour;
}

export const PLACE_COLOURS: Record<Place, { top: Rgb; bottom: Rgb; horizon: number; band?: Rgb }> = {
  house: { top: [0.95, 0.9, 0.78], bottom: [0.78, 0.62, 0.45], horizon: 0.62 },
  beach: { top: [0.55, 0.8, 0.98], bottom: [0.96, 0.87, 0.6], horizon: 0.55, band: [0.15, 0.45, 0.8] },
  forest: { top: [0.55, 0.78, 0.45], bottom: [0.2, 0.45, 0.2], horizon: 0.7 },
};

/** The background at a point (in cells): two bands split at the horizon, a beach's sea between. */
export function backgroundColour(place: Place, py: number): Rgb {
  const p = PLACE_COLOURS[place];
  const h = p.horizon * GRID;
  if (p.band && py >= h - 0.15 * GRID && py < h) return p.band;
  return py < h ? p.top : p.bottom;
}

/** Which subject (index) covers a point, or -1 for the background. */
export function subjectAt(scene: Scene, px: number, py: number): number {
  for (let i = scene.subjects.length - 1; i >= 0; i--) if (inside(scene.subjects[i], px, py)) return i;
  return -1;
}

/** The colour of the scene at a point (in cells). */
export function colourAt(scene: Scene, px: number, py: number): Rgb {
  const i = subjectAt(scene, px, py);
  if (i < 0) return backgroundColour(scene.place, py);
  const s = scene.subjects[i];
  return lookColour(lookOf(s), s, py);
}
