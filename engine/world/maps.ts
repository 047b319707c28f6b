// How much of each subject's cross-attention sits on that subject: the check that the
// world's maps are what CLoRA needs before anything is built on them.

import { subjectCoverage } from './render.ts';
import type { Scene } from './scene.ts';

export interface MapSample {
  scene: Scene;
  caption?: { subjects: number[][] };
}

export interface ObjectFraction {
  /** mean share of a subject token's map mass that lies on its own subject */
  own: number;
  /** what `own` would be for a flat map: the subject's share of the picture */
  chance: number;
  /** in two-subject scenes, mass on its own subject / mass on either subject (chance 0.5) */
  versusOther: number;
  subjects: number;
}

/** Over a batch of maps [B, grid², 77] (head- and layer-averaged probabilities). */
export function objectFraction(
  maps: Float32Array,
  samples: readonly MapSample[],
  grid: number,
): ObjectFraction {
  const cells = grid * grid;
  const tokens = maps.length / (samples.length * cells);
  let own = 0;
  let chance = 0;
  let versus = 0;
  let pairs = 0;
  let count = 0;
  samples.forEach((s, b) => {
    if (!s.caption) return;
    const cover = subjectCoverage(s.scene, grid);
    s.caption.subjects.forEach((positions, i) => {
      const map = new Float32Array(cells);
      for (let p = 0; p < cells; p++)
        for (const t of positions) map[p] += maps[(b * cells + p) * tokens + t] / positions.length;
      const total = map.reduce((a, v) => a + v, 0);
      const onOwn = map.reduce((a, v, p) => a + v * cover[i][p], 0);
      own += total > 0 ? onOwn / total : 0;
      chance += cover[i].reduce((a, v) => a + v, 0) / cells;
      count++;
      if (cover.length === 2) {
        const onOther = map.reduce((a, v, p) => a + v * cover[1 - i][p], 0);
        versus += onOwn + onOther > 0 ? onOwn / (onOwn + onOther) : 0.5;
        pairs++;
      }
    });
  });
  return {
    own: count ? own / count : 0,
    chance: count ? chance / count : 0,
    versusOther: pairs ? versus / pairs : 0.5,
    subjects: count,
  };
}
