// Masked fusion: each LoRA branch owns the pixels where its own tokens' attention is
// strong (A > threshold·max A, union over its tokens, optional 3×3 morphology); pixels no
// LoRA claims belong to the base branch 0. Masks are resized to the latent grid (nearest)
// and the branches' noise predictions are averaged per pixel with those weights.

export type Morphology = 'none' | 'open' | 'close' | 'dilate' | 'erode';

/** The attention grid CLoRA reads: a quarter of the latent on each axis (rows = height). */
export interface AttentionGrid {
  rows: number;
  cols: number;
}

/** The latent cells per attention cell on each axis: CLoRA reads the layers at a quarter of the latent (16×16 at 512²). */
export const ATTENTION_DOWNSCALE = 4;

/** The grid of the cross-attention layers at a quarter of a latent of height × width cells. */
export function attentionGrid(latentHeight: number, latentWidth: number): AttentionGrid {
  if (latentHeight % ATTENTION_DOWNSCALE !== 0 || latentWidth % ATTENTION_DOWNSCALE !== 0)
    throw new RangeError(`a ${latentHeight}×${latentWidth} latent has no quarter-size attention grid`);
  return { rows: latentHeight / ATTENTION_DOWNSCALE, cols: latentWidth / ATTENTION_DOWNSCALE };
}

/** Token maps of one branch: [rows·cols] per token position (row-major r·cols + c). */
export interface BranchMaps {
  grid: AttentionGrid;
  /** the map of token position p, length rows·cols */
  token(p: number): Float32Array;
}

/** Maps laid out as [rows, cols, T] (the aggregate's layout) for one branch. */
export function mapsFromAggregate(
  data: Float32Array,
  grid: AttentionGrid,
  tokens: number,
  offset = 0,
): BranchMaps {
  const cells = grid.rows * grid.cols;
  return {
    grid,
    token(p: number) {
      const out = new Float32Array(cells);
      for (let i = 0; i < cells; i++) out[i] = data[offset + i * tokens + p];
      return out;
    },
  };
}

/** 1 where the token's map exceeds fraction·max (strict), union over the tokens. */
export function tokenUnionMask(maps: BranchMaps, positions: readonly number[], fraction: number): Uint8Array {
  const mask = new Uint8Array(maps.grid.rows * maps.grid.cols);
  for (const p of positions) {
    const m = maps.token(p);
    let max = Number.NEGATIVE_INFINITY;
    for (const v of m) max = Math.max(max, v);
    const threshold = fraction * max;
    for (let i = 0; i < m.length; i++) if (m[i] > threshold) mask[i] = 1;
  }
  return mask;
}

function morph3x3(mask: Uint8Array, { rows, cols }: AttentionGrid, grow: boolean): Uint8Array {
  const out = new Uint8Array(mask.length);
  for (let y = 0; y < rows; y++) {
    for (let x = 0; x < cols; x++) {
      let hit = !grow;
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const yy = y + dy;
          const xx = x + dx;
          // Outside the grid counts as background for dilation and as foreground for erosion.
          const v = yy < 0 || yy >= rows || xx < 0 || xx >= cols ? !grow : mask[yy * cols + xx] === 1;
          if (grow && v) hit = true;
          if (!grow && !v) hit = false;
        }
      }
      out[y * cols + x] = hit ? 1 : 0;
    }
  }
  return out;
}

export function applyMorphology(mask: Uint8Array, grid: AttentionGrid, op: Morphology): Uint8Array {
  switch (op) {
    case 'none':
      return mask;
    case 'dilate':
      return morph3x3(mask, grid, true);
    case 'erode':
      return morph3x3(mask, grid, false);
    case 'open':
      return morph3x3(morph3x3(mask, grid, false), grid, true);
    case 'close':
      return morph3x3(morph3x3(mask, grid, true), grid, false);
  }
}

/**
 * Masks [background, lora 1 … lora N] on the attention grid from each LoRA branch's own maps.
 * @param loraTokens for LoRA i (branch i+1): its token positions in its own prompt
 */
export function branchMasks(
  branchMaps: readonly BranchMaps[],
  loraTokens: readonly (readonly number[])[],
  fraction: number,
  morphology: Morphology = 'none',
): Uint8Array[] {
  const grid = branchMaps[0].grid;
  const loraMasks = loraTokens.map((tokens, i) =>
    applyMorphology(tokenUnionMask(branchMaps[i + 1], tokens, fraction), grid, morphology),
  );
  const background = new Uint8Array(grid.rows * grid.cols);
  for (let p = 0; p < background.length; p++) background[p] = loraMasks.some((m) => m[p] === 1) ? 0 : 1;
  return [background, ...loraMasks];
}

/** Nearest-neighbour resize of a grid mask to height×width, per axis (each cell a block when sizes divide). */
export function resizeNearest(
  mask: Uint8Array,
  { rows, cols }: AttentionGrid,
  height: number,
  width: number,
): Uint8Array {
  if (mask.length !== rows * cols)
    throw new RangeError(`a mask of ${mask.length} cells is not on a ${rows}×${cols} grid`);
  const out = new Uint8Array(height * width);
  for (let y = 0; y < height; y++) {
    const sy = Math.floor((y * rows) / height);
    for (let x = 0; x < width; x++) out[y * width + x] = mask[sy * cols + Math.floor((x * cols) / width)];
  }
  return out;
}

/**
 * Σ_k M_k ε_k / Σ_k M_k per latent pixel, for every channel.
 * @param eps per branch, [C, H, W] each
 * @param masks per branch, [H, W] each (0/1 or weights)
 */
export function fuseNoise(
  eps: readonly Float32Array[],
  masks: readonly ArrayLike<number>[],
  channels: number,
): Float32Array {
  const pixels = masks[0].length;
  const out = new Float32Array(channels * pixels);
  for (let p = 0; p < pixels; p++) {
    let total = 0;
    for (const m of masks) total += m[p];
    if (total === 0) throw new Error(`latent pixel ${p} has no owner: masks must cover every pixel`);
    for (let c = 0; c < channels; c++) {
      let acc = 0;
      for (let k = 0; k < eps.length; k++) acc += masks[k][p] * eps[k][c * pixels + p];
      out[c * pixels + p] = acc / total;
    }
  }
  return out;
}

/** Classifier-free guidance: ε_u + s·(ε_c − ε_u). */
export function guide(uncond: Float32Array, cond: Float32Array, scale: number): Float32Array {
  const out = new Float32Array(uncond.length);
  for (let i = 0; i < out.length; i++) out[i] = uncond[i] + scale * (cond[i] - uncond[i]);
  return out;
}
