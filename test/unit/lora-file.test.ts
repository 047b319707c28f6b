// LoRA files: the four fixture LoRAs against their manifest, key spellings (kohya with
// diffusers or LDM names, PEFT with or without prefixes, diffusers' older forms), merged
// deltas, and refusal of other adapter types, other base models and damaged files.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { bytesOf } from '../../engine/graph/dtype.ts';
import { LoraError, type LoraModule, mergedDelta, readLora } from '../../engine/lora/file.ts';
import { baseModelHint, networkSettings, triggerCandidates } from '../../engine/lora/metadata.ts';
import { openCheckpoint } from '../../engine/weights/checkpoint.ts';
import { encodeSafetensors, SafetensorsFile, type TensorToWrite } from '../../engine/weights/safetensors.ts';
import { fixtureDir } from '../fixtures.ts';

const fx = fixtureDir();
const loraDir = join(fx, 'loras');
const manifest = JSON.parse(readFileSync(join(loraDir, 'manifest.json'), 'utf8'));
const checkpoint = openCheckpoint(join(fx, 'model'));
const base = { unet: checkpoint.unet.weights, textEncoder: checkpoint.textEncoder.weights };

const tmp = mkdtempSync(join(tmpdir(), 'clora-lora-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const FORMAT: Record<string, string> = { kohya: 'kohya', 'diffusers-peft': 'peft', 'kohya-locon': 'locon' };

/** `unet.down_blocks…` → ['unet', 'down_blocks…'] */
function splitTarget(path: string): [string, string] {
  const dot = path.indexOf('.');
  return [path.slice(0, dot), path.slice(dot + 1)];
}

function fileTensors(path: string): TensorToWrite[] {
  const file = SafetensorsFile.open(path);
  const out = file.names().map((name) => ({ name, ...file.info(name), data: file.readRaw(name) }));
  file.close();
  return out;
}

function metadataOf(path: string): Record<string, string> {
  const file = SafetensorsFile.open(path);
  const meta = file.metadata;
  file.close();
  return meta;
}

function write(name: string, tensors: TensorToWrite[], metadata?: Record<string, string>): string {
  const path = join(tmp, name);
  writeFileSync(path, encodeSafetensors(tensors, metadata));
  return path;
}

let seed = 1;
function f32(shape: number[], fill?: number): TensorToWrite['data'] {
  const n = shape.reduce((a, b) => a * b, 1);
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    seed = (seed * 16807) % 2147483647;
    values[i] = fill ?? seed / 2147483647 - 0.5;
  }
  return bytesOf(values);
}

function tensor(name: string, shape: number[], fill?: number): TensorToWrite {
  return { name, dtype: 'F32', shape, data: f32(shape, fill) };
}

/** A kohya module: down, up and alpha. */
function kohya(key: string, down: number[], up: number[], alpha?: number): TensorToWrite[] {
  const out = [tensor(`${key}.lora_down.weight`, down), tensor(`${key}.lora_up.weight`, up)];
  if (alpha !== undefined) out.push(tensor(`${key}.alpha`, [], alpha));
  return out;
}

function refuses(path: string, pattern: RegExp): void {
  assert.throws(
    () => readLora(path, base),
    (err: unknown) => {
      assert.ok(err instanceof LoraError, `expected LoraError, got ${err}`);
      const name = path.slice(path.lastIndexOf('/') + 1);
      assert.ok(err.message.includes(name), `message names the file: ${err.message}`);
      assert.match(err.message, pattern);
      return true;
    },
  );
}

const Q = 'down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q';
const Q_KOHYA = 'lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q';
const K2_KOHYA = 'lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k';

describe('fixture LoRAs against manifest.json', () => {
  for (const [fileName, entry] of Object.entries<Record<string, unknown>>(manifest)) {
    it(fileName, () => {
      const path = join(loraDir, fileName);
      const lora = readLora(path, base);
      assert.equal(lora.format, FORMAT[entry.format as string]);
      assert.equal(lora.name, fileName.replace(/\.safetensors$/, ''));
      assert.deepEqual(lora.unmatched, []);
      assert.equal(lora.modules.length, entry.n_modules);
      assert.equal(lora.rank, entry.rank);
      assert.equal(lora.sha256, createHash('sha256').update(readFileSync(path)).digest('hex'));

      const found = new Map(lora.modules.map((m) => [`${m.target}.${m.module}`, m]));
      if (entry.kohya_key_to_module) {
        for (const [key, path] of Object.entries(entry.kohya_key_to_module as Record<string, string>)) {
          const m = found.get(path);
          assert.ok(m, `${key} → ${path} not found`);
          assert.equal(m.fileKey, key);
          const [target, module] = splitTarget(path);
          assert.deepEqual([m.target, m.module], [target === 'unet' ? 'unet' : 'text_encoder', module]);
        }
      } else {
        assert.deepEqual([...found.keys()].sort(), [...(entry.modules as string[])].sort());
      }

      const pairs = (entry.rank_alpha_pairs as [number, number][]).map(([r, a]) => `${r}/${a}`);
      for (const m of lora.modules) {
        assert.ok(pairs.includes(`${m.rank}/${m.alpha}`), `${m.module}: rank ${m.rank} alpha ${m.alpha}`);
        assert.equal(m.scale, m.alpha / m.rank);
        const k = m.downShape.length === 4 ? m.downShape[2] * m.downShape[3] : 1;
        if (entry.conv_rank !== undefined) {
          assert.equal(m.rank, k > 1 ? entry.conv_rank : entry.rank, m.module);
          assert.equal(m.alpha, k > 1 ? entry.conv_alpha : entry.alpha, m.module);
        }
        const baseShape = (m.target === 'unet' ? base.unet : base.textEncoder).shape(`${m.module}.weight`);
        assert.equal(m.kind, baseShape.length === 4 ? 'conv' : 'linear');
        assert.deepEqual(m.upShape, [baseShape[0], m.rank]);
        assert.deepEqual(m.downShape, [m.rank, ...baseShape.slice(1)]);
        assert.equal(
          m.down.length,
          m.downShape.reduce((a, b) => a * b, 1),
        );
        assert.equal(
          m.up.length,
          m.upShape.reduce((a, b) => a * b, 1),
        );
      }
      if (entry.trigger) assert.equal(lora.triggerCandidates[0], entry.trigger);
      if (entry.format !== 'diffusers-peft') assert.equal(lora.baseModelHint, 'sd_v1');
    });
  }

  it('keeps the factors exactly as stored', () => {
    const path = join(loraDir, 'lora_iv_kohya_locon_unet.safetensors');
    const lora = readLora(path, base);
    const file = SafetensorsFile.open(path);
    for (const m of lora.modules) {
      assert.deepEqual(m.down, file.float32(`${m.fileKey}.lora_down.weight`));
      assert.deepEqual(m.up, file.float32(`${m.fileKey}.lora_up.weight`));
    }
    file.close();
  });

  it('reads kohya metadata: trigger words by frequency, base model', () => {
    const lora = readLora(join(loraDir, 'lora_i_kohya_unet_te.safetensors'), base);
    assert.deepEqual(lora.triggerCandidates, ['sks', 'cat', 'penguin']);
    assert.equal(lora.metadata.ss_network_dim, '4');
    const locon = readLora(join(loraDir, 'lora_iv_kohya_locon_unet.safetensors'), base);
    assert.equal(JSON.parse(locon.metadata.ss_network_args).conv_dim, '2');
  });

  it('matches the same layers through the single-file checkpoint', () => {
    const single = openCheckpoint(join(fx, 'tiny-sd15.safetensors'), {
      tokenizerDir: checkpoint.tokenizerDir,
    });
    const other = { unet: single.unet.weights, textEncoder: single.textEncoder.weights };
    for (const name of Object.keys(manifest)) {
      const a = readLora(join(loraDir, name), base).modules.map((m) => `${m.target}.${m.module}`);
      const b = readLora(join(loraDir, name), other).modules.map((m) => `${m.target}.${m.module}`);
      assert.deepEqual(b, a);
    }
  });
});

describe('mergedDelta', () => {
  /** scale · up @ down, written plainly */
  function naive(m: LoraModule): number[] {
    const [out, r] = m.upShape;
    const inner = m.down.length / r;
    const d: number[] = [];
    for (let o = 0; o < out; o++) {
      for (let i = 0; i < inner; i++) {
        let s = 0;
        for (let k = 0; k < r; k++) s += m.up[o * r + k] * m.down[k * inner + i];
        d.push(Math.fround(m.scale * s));
      }
    }
    return d;
  }

  it('is scale · up @ down in the base weight’s shape (linear, 1×1 conv, 3×3 LoCon)', () => {
    const lora = readLora(join(loraDir, 'lora_iv_kohya_locon_unet.safetensors'), base);
    const pick = (module: string) => lora.modules.find((m) => m.module === module)!;
    for (const module of [Q, 'down_blocks.0.attentions.0.proj_in', 'up_blocks.3.resnets.2.conv2']) {
      const m = pick(module);
      const delta = mergedDelta(m);
      const weight = base.unet.shape(`${module}.weight`);
      assert.equal(
        delta.length,
        weight.reduce((a, b) => a * b, 1),
      );
      const expected = naive(m);
      for (let i = 0; i < delta.length; i++)
        assert.ok(Math.abs(delta[i] - expected[i]) <= 1e-6 * (1 + Math.abs(expected[i])));
    }
    assert.equal(pick('up_blocks.3.resnets.2.conv2').scale, 0.5);
  });
});

describe('key spellings', () => {
  it('kohya names in the LDM layout map to the same layers', () => {
    // Ground truth independent of the loader's key map: LDM and diffusers tensors with equal bytes.
    const single = SafetensorsFile.open(join(fx, 'tiny-sd15.safetensors'));
    const byBytes = new Map<string, string>();
    for (const key of single.names()) {
      if (key.startsWith('model.diffusion_model.') && key.endsWith('.weight')) {
        byBytes.set(Buffer.from(single.readRaw(key)).toString('base64'), key.slice(22, -7));
      }
    }
    single.close();
    const ldmOf = (module: string) =>
      byBytes.get(
        Buffer.from(base.unet.weightData(`${module}.weight`, 'float32').read()).toString('base64'),
      )!;

    const original = join(loraDir, 'lora_iv_kohya_locon_unet.safetensors');
    const renamed = new Map<string, string>();
    for (const [key, path] of Object.entries<string>(
      manifest['lora_iv_kohya_locon_unet.safetensors'].kohya_key_to_module,
    )) {
      const ldm = ldmOf(splitTarget(path)[1]);
      assert.ok(ldm, path);
      renamed.set(key, `lora_unet_${ldm.replaceAll('.', '_')}`);
    }
    assert.ok([...renamed.values()].includes('lora_unet_input_blocks_1_1_proj_in'));
    const tensors = fileTensors(original).map((t) => {
      const dot = t.name.indexOf('.');
      return { ...t, name: renamed.get(t.name.slice(0, dot))! + t.name.slice(dot) };
    });
    const path = write('ldm_names.safetensors', tensors, metadataOf(original));
    const a = readLora(original, base);
    const b = readLora(path, base);
    assert.deepEqual(b.unmatched, []);
    assert.deepEqual(
      b.modules.map((m) => [m.module, m.rank, m.alpha, m.downShape]),
      a.modules.map((m) => [m.module, m.rank, m.alpha, m.downShape]),
    );
    assert.equal(
      b.modules.find((m) => m.module === 'down_blocks.0.resnets.0.conv1')?.fileKey,
      'lora_unet_input_blocks_1_0_in_layers_2',
    );
  });

  it('PEFT keys without a prefix are UNet keys; text_model paths are text-encoder keys', () => {
    const tensors = fileTensors(join(loraDir, 'lora_iii_peft_unet_te.safetensors')).map((t) => ({
      ...t,
      name: t.name.replace(/^(unet|text_encoder)\./, ''),
    }));
    const lora = readLora(write('bare_peft.safetensors', tensors), base);
    assert.equal(lora.format, 'peft');
    const expected: string[] = manifest['lora_iii_peft_unet_te.safetensors'].modules;
    assert.deepEqual(lora.modules.map((m) => `${m.target}.${m.module}`).sort(), [...expected].sort());
    assert.ok(lora.modules.every((m) => m.scale === 1));
  });

  it('PEFT files with alpha tensors use alpha / rank', () => {
    const tensors = [
      tensor(`unet.${Q}.lora_A.weight`, [4, 32]),
      tensor(`unet.${Q}.lora_B.weight`, [32, 4]),
      tensor(`unet.${Q}.alpha`, [], 8),
    ];
    const [m] = readLora(write('peft_alpha.safetensors', tensors), base).modules;
    assert.deepEqual([m.module, m.alpha, m.scale], [Q, 8, 2]);
  });

  it("diffusers' older attention-processor and lora_linear_layer forms", () => {
    const root = 'down_blocks.0.attentions.0.transformer_blocks.0.attn2';
    const tensors = [
      tensor(`${root}.processor.to_q_lora.down.weight`, [4, 32]),
      tensor(`${root}.processor.to_q_lora.up.weight`, [32, 4]),
      tensor(`${root}.processor.to_out_lora.down.weight`, [4, 32]),
      tensor(`${root}.processor.to_out_lora.up.weight`, [32, 4]),
      tensor(
        'text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_linear_layer.down.weight',
        [4, 32],
      ),
      tensor(
        'text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_linear_layer.up.weight',
        [32, 4],
      ),
    ];
    const lora = readLora(write('old_diffusers.safetensors', tensors), base);
    assert.deepEqual(lora.modules.map((m) => `${m.target}:${m.module}`).sort(), [
      `text_encoder:text_model.encoder.layers.0.self_attn.q_proj`,
      `unet:${root}.to_out.0`,
      `unet:${root}.to_q`,
    ]);
  });

  it('a missing alpha means alpha = rank, and so does a stored 0', () => {
    const tensors = [...kohya(Q_KOHYA, [4, 32], [32, 4]), ...kohya(K2_KOHYA, [2, 32], [64, 2], 0)];
    const lora = readLora(write('no_alpha.safetensors', tensors), base);
    assert.deepEqual(
      lora.modules.map((m) => [m.rank, m.alpha, m.scale]),
      [
        [4, 4, 1],
        [2, 2, 1],
      ],
    );
  });

  it('accepts linear-shaped factors on a 1×1 conv and 1×1 conv factors on a linear layer', () => {
    const tensors = [
      ...kohya('lora_unet_down_blocks_0_attentions_0_proj_in', [4, 32], [32, 4], 2),
      ...kohya(Q_KOHYA, [4, 32, 1, 1], [32, 4, 1, 1], 2),
    ];
    const [projIn, q] = readLora(write('mixed_forms.safetensors', tensors), base).modules;
    assert.deepEqual([projIn.kind, projIn.downShape, projIn.upShape], ['conv', [4, 32, 1, 1], [32, 4]]);
    assert.deepEqual([q.kind, q.downShape, q.upShape], ['linear', [4, 32], [32, 4]]);
  });

  it('reports keys that match no layer instead of dropping them', () => {
    const tensors = [
      ...kohya(Q_KOHYA, [4, 32], [32, 4], 2),
      ...kohya('lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn3_to_q', [4, 32], [32, 4], 2),
      tensor('bundle_emb.sks.string_to_param.*', [1, 32]),
    ];
    const lora = readLora(write('partly.safetensors', tensors), base);
    assert.equal(lora.modules.length, 1);
    assert.deepEqual(lora.unmatched.sort(), [
      'bundle_emb.sks.string_to_param.*',
      'lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn3_to_q',
    ]);
  });
});

describe('readLora refuses', () => {
  it('LoHa, LoKr, DoRA and CP-decomposed LoCon files by name', () => {
    const loha = write('loha.safetensors', [
      tensor(`${Q_KOHYA}.hada_w1_a`, [32, 4]),
      tensor(`${Q_KOHYA}.hada_w1_b`, [4, 32]),
      tensor(`${Q_KOHYA}.alpha`, [], 4),
    ]);
    refuses(loha, /LoHa \(LyCORIS\) files are not supported yet; use a LoRA\/LoCon file/);
    refuses(
      write('lokr.safetensors', [tensor(`${Q_KOHYA}.lokr_w1`, [4, 4])]),
      /LoKr \(LyCORIS\) files are not supported yet/,
    );
    refuses(
      write('dora.safetensors', [
        ...kohya(Q_KOHYA, [4, 32], [32, 4], 2),
        tensor(`${Q_KOHYA}.dora_scale`, [1, 32]),
      ]),
      /DoRA files are not supported yet/,
    );
    refuses(
      write('tucker.safetensors', [tensor(`${Q_KOHYA}.lora_mid.weight`, [4, 4, 3, 3])]),
      /lora_mid.*use_tucker/,
    );
  });

  it('SDXL LoRAs, by key names or by cross-attention width', () => {
    refuses(
      write(
        'xl_names.safetensors',
        kohya('lora_te1_text_model_encoder_layers_0_self_attn_q_proj', [4, 768], [768, 4], 4),
      ),
      /made for SDXL \(it has two text encoders/,
    );
    refuses(
      write('xl_width.safetensors', kohya(K2_KOHYA, [4, 2048], [64, 4], 4)),
      /made for SDXL \(its cross-attention takes 2048-wide/,
    );
  });

  it('SD 2 LoRAs by width', () => {
    refuses(write('sd2.safetensors', kohya(K2_KOHYA, [4, 1024], [64, 4], 4)), /made for SD 2\.x/);
  });

  it('factors that do not fit the base model, naming the layer', () => {
    refuses(
      write('misfit.safetensors', kohya(Q_KOHYA, [4, 48], [48, 4], 4), { ss_base_model_version: 'sd_v1' }),
      new RegExp(
        `layer ${Q.replaceAll('.', '\\.')} is \\[32,32\\] in the base model.*down \\[4,48\\].*different base model \\(its metadata says sd_v1\\)`,
      ),
    );
    refuses(write('rank.safetensors', kohya(Q_KOHYA, [4, 32], [32, 3], 4)), /different base model/);
  });

  it('a module with a down factor but no up factor', () => {
    refuses(
      write('half.safetensors', [tensor(`${Q_KOHYA}.lora_down.weight`, [4, 32])]),
      /has a down factor but no up factor/,
    );
  });

  it('files whose keys match nothing', () => {
    refuses(
      write('nothing.safetensors', kohya('lora_unet_foo_bar', [4, 32], [32, 4])),
      /none of its 1 entries matches/,
    );
  });

  it('damaged files, naming the file and the defect', () => {
    const good = encodeSafetensors(kohya(Q_KOHYA, [4, 32], [32, 4], 2));
    const truncated = join(tmp, 'truncated.safetensors');
    writeFileSync(truncated, good);
    truncateSync(truncated, good.length - 10);
    refuses(truncated, /LoRA truncated\.safetensors: .*lies outside the file.*truncated/);

    const raw = (name: string, header: unknown, bytes: number) => {
      const json = new TextEncoder().encode(JSON.stringify(header));
      const out = new Uint8Array(8 + json.length + bytes);
      new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
      out.set(json, 8);
      const path = join(tmp, name);
      writeFileSync(path, out);
      return path;
    };
    const entry = (dtype: string, shape: number[], offsets: number[]) => ({
      dtype,
      shape,
      data_offsets: offsets,
    });
    refuses(
      raw('outside.safetensors', { [`${Q_KOHYA}.alpha`]: entry('F32', [], [0, 4]) }, 2),
      /lies outside the file/,
    );
    refuses(
      raw('overlap.safetensors', { a: entry('F32', [2], [0, 8]), b: entry('F32', [2], [4, 12]) }, 12),
      /'a' \(bytes 0–8\) and 'b' \(bytes 4–12\) overlap/,
    );
    refuses(raw('dtype.safetensors', { a: entry('Q4', [2], [0, 1]) }, 1), /unknown dtype "Q4"/);
  });

  it('pickled files by extension', () => {
    const path = join(tmp, 'style.ckpt');
    writeFileSync(path, Uint8Array.from([0x80, 2]));
    refuses(path, /pickled PyTorch file \(\.ckpt\); convert it to \.safetensors/);
    refuses(join(tmp, 'style.pt'), /pickled PyTorch file \(\.pt\)/);
  });
});

describe('LoRA metadata', () => {
  it('ranks tag frequencies across folders, after a declared trigger phrase', () => {
    const meta = {
      'modelspec.trigger_phrase': 'zxc style, zxc',
      ss_tag_frequency: JSON.stringify({ '5_zxc': { zxc: 5, dog: 2 }, '3_dog': { dog: 4, grass: 1 } }),
    };
    assert.deepEqual(triggerCandidates(meta), ['zxc style', 'zxc', 'dog', 'grass']);
  });

  it('reads tag frequencies from ss_datasets and ignores broken JSON', () => {
    const meta = { ss_datasets: JSON.stringify([{ tag_frequency: { a: { qwe: 3, sky: 1 } } }]) };
    assert.deepEqual(triggerCandidates(meta), ['qwe', 'sky']);
    assert.deepEqual(triggerCandidates({ ss_tag_frequency: '{not json' }), []);
  });

  it('names the base model from modelspec, kohya version or model name', () => {
    assert.equal(
      baseModelHint({ 'modelspec.architecture': 'stable-diffusion-v1/lora', ss_base_model_version: 'sd_v1' }),
      'stable-diffusion-v1/lora',
    );
    assert.equal(baseModelHint({ ss_v2: 'True' }), 'sd_v2');
    assert.equal(baseModelHint({ ss_sd_model_name: 'v1-5-pruned.safetensors' }), 'v1-5-pruned.safetensors');
    assert.equal(baseModelHint({}), undefined);
  });

  it('parses the network settings kohya recorded', () => {
    const lora = readLora(join(loraDir, 'lora_iv_kohya_locon_unet.safetensors'), base);
    assert.deepEqual(lora.network, {
      module: 'networks.lora',
      dim: 4,
      alpha: 2,
      args: { conv_dim: '2', conv_alpha: '1.0' },
    });
    assert.deepEqual(networkSettings({}), {});
  });
});
