// `npm run compose` on the tiny model: without --size it draws at the model's own size
// (256×256), and wide and tall pictures come with masks, maps and a report on their
// rows × cols attention grid; --compare adds merge beside CLoRA.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import sharp from 'sharp';
import { fixtureDir, repoRoot } from '../fixtures.ts';

const fixture = fixtureDir();
const work = mkdtempSync(join(tmpdir(), 'clora-cli-'));
after(() => rmSync(work, { recursive: true, force: true }));

function compose(out: string, ...options: string[]) {
  const run = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      join(repoRoot, 'bot', 'cli', 'compose.ts'),
      '--model',
      join(fixture, 'model'),
      '--lora',
      `tabby=${join(fixture, 'loras', 'lora_i_kohya_unet_te.safetensors')}`,
      '--lora',
      `plush=${join(fixture, 'loras', 'lora_ii_kohya_unet_attn_ff.safetensors')}`,
      '--trigger',
      'tabby=sks',
      '--trigger',
      'plush=ohwx',
      'cat:<tabby> penguin:<plush> in a house',
      '--seed',
      '4',
      '--steps',
      '2',
      '--iterations',
      '1',
      '--cache',
      join(work, 'cache'),
      '--out',
      join(work, out),
      ...options,
    ],
    { cwd: repoRoot, encoding: 'utf8', timeout: 300_000 },
  );
  assert.equal(run.status, 0, run.stderr);
  const dir = join(work, out);
  return { dir, report: JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) };
}

const sizeOf = async (file: string) => {
  const m = await sharp(file).metadata();
  return [m.width, m.height];
};

describe('npm run compose', () => {
  it("draws at the model's own size without --size; --compare puts merge beside CLoRA", {
    timeout: 300_000,
  }, async () => {
    const { dir, report } = compose('native', '--compare');
    assert.deepEqual(await sizeOf(join(dir, 'image.png')), [256, 256]);
    assert.deepEqual(report.size, { width: 256, height: 256 });
    assert.deepEqual(report.attentionGrid, { rows: 8, cols: 8 });
    // merge | CLoRA | CLoRA's masks, in one row of 256 px pictures under their titles
    const [w, h] = (await sizeOf(join(dir, 'compare.png'))) as number[];
    assert.ok(w > 3 * 256 && h > 256, `compare.png is ${w}×${h}`);
  });

  for (const [width, height] of [
    [384, 256],
    [256, 384],
  ]) {
    it(`draws ${width}×${height} with masks and maps on a ${height / 32}×${width / 32} grid`, {
      timeout: 300_000,
    }, async () => {
      const { dir, report } = compose(`${width}x${height}`, '--size', `${width}x${height}`);
      assert.deepEqual(await sizeOf(join(dir, 'image.png')), [width, height]);
      assert.deepEqual(report.attentionGrid, { rows: height / 32, cols: width / 32 });
      const cells = (height / 32) * (width / 32);
      assert.equal(report.maskPixels.length, 3);
      assert.ok(report.maskPixels.every((p: number) => p <= cells));
      assert.ok(
        report.losses.length > 0 && report.losses.every((l: { loss: number }) => Number.isFinite(l.loss)),
      );
      for (const picture of ['masks.png', 'maps.png']) assert.ok(existsSync(join(dir, picture)), picture);
      const [mw, mh] = (await sizeOf(join(dir, 'masks.png'))) as number[];
      // the picture with its overlays, a legend below it
      assert.ok(mw === width && mh >= height, `masks.png is ${mw}×${mh}`);
    });
  }
});
