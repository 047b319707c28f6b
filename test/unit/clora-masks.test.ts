// CLoRA's masks on a non-square attention grid: rows are the height, cols the width, and no
// step may swap them (a swap keeps every length, so only values reveal it).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  applyMorphology,
  attentionGrid,
  branchMasks,
  mapsFromAggregate,
  resizeNearest,
} from '../../engine/clora/masks.ts';

const grid = { rows: 2, cols: 3 };

describe('masks on a rows × cols grid', () => {
  it('takes the grid from the latent per axis', () => {
    assert.deepEqual(attentionGrid(32, 48), { rows: 8, cols: 12 });
    assert.deepEqual(attentionGrid(48, 32), { rows: 12, cols: 8 });
    assert.throws(() => attentionGrid(30, 48), /no quarter-size attention grid/);
  });

  it('reads a token map out of [rows, cols, T] row-major', () => {
    const tokens = 2;
    const data = Float32Array.from({ length: 6 * tokens }, (_, i) => i);
    const maps = mapsFromAggregate(data, grid, tokens);
    assert.deepEqual([...maps.token(1)], [1, 3, 5, 7, 9, 11]);
    assert.deepEqual(maps.grid, grid);
  });

  it('dilates and erodes within the grid, not a square of rows', () => {
    // 1 at row 0, col 2: dilation reaches (0,1) (1,1) (1,2) and nothing beyond col 2
    const mask = Uint8Array.of(0, 0, 1, 0, 0, 0);
    assert.deepEqual([...applyMorphology(mask, grid, 'dilate')], [0, 1, 1, 0, 1, 1]);
    const full = Uint8Array.of(1, 1, 1, 1, 1, 0);
    assert.deepEqual([...applyMorphology(full, grid, 'erode')], [1, 0, 0, 1, 0, 0]);
  });

  it('resizes each axis by its own factor', () => {
    const mask = Uint8Array.of(1, 0, 0, 0, 0, 1);
    const big = resizeNearest(mask, grid, 4, 6);
    assert.deepEqual([...big], [1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 1, 1]);
    assert.throws(() => resizeNearest(mask, { rows: 2, cols: 2 }, 4, 4), /not on a 2×2 grid/);
  });

  it('gives the background every cell no LoRA claims, on the whole grid', () => {
    const tokens = 1;
    const base = mapsFromAggregate(new Float32Array(6), grid, tokens);
    const lora = mapsFromAggregate(Float32Array.of(0, 0, 0, 0, 0, 1), grid, tokens);
    const [background, claimed] = branchMasks([base, lora], [[0]], 0.3);
    assert.deepEqual([...claimed], [0, 0, 0, 0, 0, 1]);
    assert.deepEqual([...background], [1, 1, 1, 1, 1, 0]);
  });
});
