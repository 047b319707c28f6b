// The attention kernels on the tiny SD 1.5 model: the memory-efficient (chunked) and fused
// kernels agree with the materialised one to 1e-5 relative, for the denoising UNet with its
// maps, the VAE decoder and CLoRA's guidance pass (loss and ∂loss/∂latent), with a chunk
// budget small enough that every self-attention layer is split, into uneven chunks at the
// non-square size.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { compileDenoiseUNet, compileGuidance } from '../../engine/clora/graphs.ts';
import { groupFeeds } from '../../engine/clora/loss.ts';
import * as G from '../../engine/graph/index.ts';
import type { AttentionKernel } from '../../engine/models/attention.ts';
import { compileVaeDecoder, type ModelOptions, unetGraph } from '../../engine/models/compiled.ts';
import { gaussianNoise } from '../../engine/schedulers/noise.ts';
import { openCheckpoint } from '../../engine/weights/checkpoint.ts';
import { fixtureDir } from '../fixtures.ts';

const ck = openCheckpoint(join(fixtureDir(), 'model'));
const c = ck.unet.config;
// 4 MiB a sample: the tiny model's 32×32 self-attention (8 heads, 64 MiB whole) splits into 16 chunks,
// the VAE's (1 head) into 2
const SMALL = 4 * 2 ** 20;
const options = (attention: AttentionKernel): ModelOptions => ({
  attention,
  attentionChunkBytes: SMALL,
});

function relativeError(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / scale;
}

const data = (t: G.HostTensor) => t.data as Float32Array;

describe('attention kernels agree on the tiny model', () => {
  it('splits self-attention into chunks at the small budget', () => {
    const { graph } = unetGraph(ck, 'unet', options('chunked'));
    const chunked = graph.nodes.filter((n) => n.op.name === 'ChunkedAttention');
    assert.ok(chunked.length > 0, 'no chunked attention node');
    assert.ok(
      chunked.some((n) => (n.attrs as { chunks: number }).chunks > 1),
      'no layer was split into chunks',
    );
  });

  for (const [h, w] of [
    [32, 32],
    [24, 40],
  ]) {
    it(`denoising UNet with maps, latent ${h}×${w}`, async () => {
      const feeds = {
        sample: G.hostTensor('float32', gaussianNoise(1, 2 * 4 * h * w, 0), [2, 4, h, w]),
        timestep: G.hostTensor('float32', Float32Array.of(800, 200), [2]),
        context: G.hostTensor('float32', gaussianNoise(2, 2 * 77 * c.cross_attention_dim, 0), [
          2,
          77,
          c.cross_attention_dim,
        ]),
      };
      const reference = await compileDenoiseUNet(ck, options('materialised'));
      const want = await reference.model.run(feeds);
      for (const kernel of ['chunked', 'fused'] as const) {
        const net = await compileDenoiseUNet(ck, options(kernel));
        const got = await net.model.run(feeds);
        assert.ok(relativeError(data(got.noise), data(want.noise)) < 1e-5, `${kernel}: noise`);
        assert.ok(relativeError(data(got.maps), data(want.maps)) < 1e-5, `${kernel}: maps`);
        await net.model.release();
      }
      await reference.model.release();
    });
  }

  it('VAE decoder', async () => {
    const feeds = { latents: G.hostTensor('float32', gaussianNoise(3, 4 * 16 * 24, 0), [1, 4, 16, 24]) };
    const want = data((await (await compileVaeDecoder(ck, options('materialised'))).model.run(feeds)).image);
    for (const kernel of ['chunked', 'fused'] as const) {
      const got = data((await (await compileVaeDecoder(ck, options(kernel))).model.run(feeds)).image);
      assert.ok(relativeError(got, want) < 1e-5, kernel);
    }
  });

  it("CLoRA's guidance pass: maps, loss and ∂loss/∂latent", async () => {
    const [h, w] = [24, 32];
    const groups = [
      [
        { prompt: 0, position: 2 },
        { prompt: 1, position: 2 },
      ],
      [
        { prompt: 0, position: 5 },
        { prompt: 1, position: 5 },
      ],
    ];
    const feeds = {
      latent: G.hostTensor('float32', gaussianNoise(4, 4 * h * w, 0), [1, 4, h, w]),
      timestep: G.hostTensor('float32', Float32Array.of(900, 900), [2]),
      context: G.hostTensor('float32', gaussianNoise(5, 2 * 77 * c.cross_attention_dim, 0), [
        2,
        77,
        c.cross_attention_dim,
      ]),
      ...groupFeeds(groups, 2, 77),
    };
    const want = await (await compileGuidance(ck, options('materialised'))).model.run(feeds);
    for (const kernel of ['chunked', 'fused'] as const) {
      const got = await (await compileGuidance(ck, options(kernel))).model.run(feeds);
      for (const out of ['loss', 'grad', 'maps'])
        assert.ok(relativeError(data(got[out]), data(want[out])) < 1e-5, `${kernel}: ${out}`);
    }
  });
});
