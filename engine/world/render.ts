// Scenes drawn twice: straight onto the latent grid (the hand-defined encoding the UNet
// learns to denoise) and as the 256×256 picture the VAE decoder learns to paint from it.
// A latent cell holds the area average of (colour, subject-or-not) over the cell, so the
// decoder can recover sharp edges from the mix at a boundary.

import { colourAt, GRID, type Scene, subjectAt } from './scene.ts';

export const LATENT_CHANNELS = 4;
/** Supersamples per cell side when a cell's area average is taken. */
const SUPERSAMPLE = 4;

/** A colour in [0, 1] and a subject flag as a latent vector of roughly unit spread. */
export function latentCode(rgb: readonly number[], subject: boolean): [number, number, number, number] {
  return [3 * (rgb[0] - 0.5), 3 * (rgb[1] - 0.5), 3 * (rgb[2] - 0.5), subject ? 1 : -1];
}

/** The colour a latent vector encodes (the inverse of latentCode), clamped to [0, 1]. */
export function colourOfCode(z: readonly number[]): [number, number, number] {
  const c = (v: number) => Math.min(1, Math.max(0, v / 3 + 0.5));
  return [c(z[0]), c(z[1]), c(z[2])];
}

/** [4, grid, grid] latent of a scene. */
export function sceneLatent(scene: Scene, grid = GRID): Float32Array {
  const out = new Float32Array(LATENT_CHANNELS * grid * grid);
  const cell = GRID / grid;
  const n = SUPERSAMPLE * SUPERSAMPLE;
  for (let y = 0; y < grid; y++) {
    for (let x = 0; x < grid; x++) {
      const sum = [0, 0, 0, 0];
      for (let sy = 0; sy < SUPERSAMPLE; sy++) {
        for (let sx = 0; sx < SUPERSAMPLE; sx++) {
          const px = (x + (sx + 0.5) / SUPERSAMPLE) * cell;
          const py = (y + (sy + 0.5) / SUPERSAMPLE) * cell;
          const code = latentCode(colourAt(scene, px, py), subjectAt(scene, px, py) >= 0);
          for (let c = 0; c < LATENT_CHANNELS; c++) sum[c] += code[c];
        }
      }
      for (let c = 0; c < LATENT_CHANNELS; c++) out[(c * grid + y) * grid + x] = sum[c] / n;
    }
  }
  return out;
}

/** [3, side, side] picture of a scene in [-1, 1] (the VAE's output range), 2×2 supersampled. */
export function sceneImage(scene: Scene, side = GRID * 8): Float32Array {
  const out = new Float32Array(3 * side * side);
  const cell = GRID / side;
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      const sum = [0, 0, 0];
      for (let s = 0; s < 4; s++) {
        const rgb = colourAt(scene, (x + 0.25 + 0.5 * (s & 1)) * cell, (y + 0.25 + 0.5 * (s >> 1)) * cell);
        for (let c = 0; c < 3; c++) sum[c] += rgb[c];
      }
      for (let c = 0; c < 3; c++) out[(c * side + y) * side + x] = (sum[c] / 4) * 2 - 1;
    }
  }
  return out;
}

/**
 * Area fraction of each cell of a grid covered by each subject: one [grid·grid] array per
 * subject, row-major, as the UNet's attention maps are laid out.
 */
export function subjectCoverage(scene: Scene, grid: number): Float32Array[] {
  const out = scene.subjects.map(() => new Float32Array(grid * grid));
  const cell = GRID / grid;
  const k = Math.max(4, Math.round(4 * cell)); // four samples a latent cell
  for (let y = 0; y < grid; y++) {
    for (let x = 0; x < grid; x++) {
      for (let sy = 0; sy < k; sy++) {
        for (let sx = 0; sx < k; sx++) {
          const i = subjectAt(scene, (x + (sx + 0.5) / k) * cell, (y + (sy + 0.5) / k) * cell);
          if (i >= 0) out[i][y * grid + x] += 1 / (k * k);
        }
      }
    }
  }
  return out;
}
