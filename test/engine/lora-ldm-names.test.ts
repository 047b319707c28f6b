// A kohya LoRA whose UNet modules carry the older LDM names (input_blocks, middle_block,
// output_blocks) drives the UNet exactly as the same LoRA under diffusers names does, and
// matches diffusers' own output for that LoRA.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { Engine } from '../../engine/clora/engine.ts';
import * as G from '../../engine/graph/index.ts';
import { loraFeeds } from '../../engine/lora/gated.ts';
import { encodeSafetensors, SafetensorsFile } from '../../engine/weights/safetensors.ts';
import { fixtureDir } from '../fixtures.ts';

const fx = fixtureDir();
const work = mkdtempSync(join(tmpdir(), 'clora-ldm-lora-'));
const ORIGINAL = join(fx, 'loras', 'lora_i_kohya_unet_te.safetensors');

let engine: Engine;
before(async () => {
  engine = await Engine.load({ modelPath: join(fx, 'model'), cacheDir: join(work, 'cache') });
});
after(async () => {
  await engine?.close();
  rmSync(work, { recursive: true, force: true });
});

/**
 * The fixture LoRA with each UNet module renamed to its LDM name. The names come from the
 * single-file checkpoint itself (the LDM tensor holding the same bytes as the diffusers one),
 * not from the loader's key map, so the test does not check the map against itself.
 */
function ldmNamedCopy(): string {
  const single = SafetensorsFile.open(join(fx, 'tiny-sd15.safetensors'));
  const ldmByBytes = new Map<string, string>();
  for (const key of single.names()) {
    if (key.startsWith('model.diffusion_model.') && key.endsWith('.weight'))
      ldmByBytes.set(Buffer.from(single.readRaw(key)).toString('base64'), key.slice(22, -7));
  }
  single.close();
  const unet = engine.checkpoint.unet.weights;
  const lora = SafetensorsFile.open(ORIGINAL);
  const renamed = new Set<string>();
  const tensors = lora.names().map((name) => {
    const dot = name.indexOf('.');
    const module = name.slice(0, dot);
    let key = name;
    if (module.startsWith('lora_unet_')) {
      const diffusers = unetModuleOf(module.slice('lora_unet_'.length), unet.names());
      const bytes = Buffer.from(unet.weightData(`${diffusers}.weight`, 'float32').read()).toString('base64');
      const ldm = ldmByBytes.get(bytes);
      assert.ok(ldm, `no LDM tensor holds ${diffusers}`);
      key = `lora_unet_${ldm.replaceAll('.', '_')}${name.slice(dot)}`;
      renamed.add(key.slice(0, key.indexOf('.')));
    }
    return { name: key, ...lora.info(name), data: lora.readRaw(name) };
  });
  const metadata = lora.metadata;
  lora.close();
  for (const part of ['input_blocks_', 'middle_block_', 'output_blocks_'])
    assert.ok(
      [...renamed].some((k) => k.includes(part)),
      `the copy renames ${part} modules`,
    );
  const path = join(work, 'lora_i_ldm_names.safetensors');
  writeFileSync(path, encodeSafetensors(tensors, metadata));
  return path;
}

/** The diffusers module a kohya UNet key (underscored) names. */
function unetModuleOf(underscored: string, names: readonly string[]): string {
  const found = names.find(
    (n) => n.endsWith('.weight') && n.slice(0, -7).replaceAll('.', '_') === underscored,
  );
  assert.ok(found, underscored);
  return found.slice(0, -7);
}

it('an LDM-named kohya LoRA gives the same UNet output as its diffusers-named original', async () => {
  const ldmPath = ldmNamedCopy();
  const reference = SafetensorsFile.open(join(fx, 'reference', 'unet.safetensors'));
  const latent = reference.float32('latent_1');
  const latentShape = reference.info('latent_1').shape;
  const context = reference.float32('encoder_hidden_states_1');
  const contextShape = reference.info('encoder_hidden_states_1').shape;
  const expected = reference.float32('noise_pred_1.lora_i');
  const base = reference.float32('noise_pred_1.base');
  reference.close();

  const net = await engine.models().unet({ loraConvs: false });
  const run = async (path: string, name: string) => {
    const lora = engine.loadLora({ name, path });
    const out = await net.model.run({
      sample: G.hostTensor('float32', latent, latentShape),
      timestep: G.hostTensor('float32', Float32Array.of(500), [1]),
      context: G.hostTensor('float32', context, contextShape),
      ...loraFeeds(net.slots!, [{ modules: lora.modules, weights: [1] }], 1),
    });
    return { noise: out.noise.data as Float32Array, lora };
  };
  const original = await run(ORIGINAL, 'original');
  const ldm = await run(ldmPath, 'ldm');
  assert.deepEqual(ldm.lora.unmatched, []);
  assert.equal(ldm.lora.modules.length, original.lora.modules.length);

  const maxDiff = (a: Float32Array, b: Float32Array) =>
    a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
  assert.equal(maxDiff(ldm.noise, original.noise), 0, 'the two spellings must give identical outputs');
  // Both are the LoRA diffusers computed, and the LoRA visibly changes the output.
  const scale = expected.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  assert.ok(
    maxDiff(ldm.noise, expected) <= 1e-4 * (1 + scale),
    `off diffusers by ${maxDiff(ldm.noise, expected)}`,
  );
  assert.ok(maxDiff(expected, base) > 100 * maxDiff(ldm.noise, expected), 'the LoRA changes the output');
});
