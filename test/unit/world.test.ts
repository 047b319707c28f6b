// The world the project trains: scenes are reproducible from a seed, drawn consistently on
// the latent grid and in pixels, captioned with the tokens that name each subject, and the
// localisation term and map measure reward exactly maps that sit on their subjects.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { readLora } from '../../engine/lora/file.ts';
import { trainingSchedule } from '../../engine/schedulers/schedule.ts';
import { ClipTokenizer } from '../../engine/tokenizer/clip-tokenizer.ts';
import { TensorStore } from '../../engine/training/tensor-store.ts';
import { openCheckpoint } from '../../engine/weights/checkpoint.ts';
import { SD15_SCHEDULER_CONFIG } from '../../engine/weights/family.ts';
import { captionTokens } from '../../engine/world/captions.ts';
import { WorldSampler } from '../../engine/world/check.ts';
import { detectSubjects } from '../../engine/world/detector.ts';
import {
  copyTextParts,
  hasTextParts,
  UNET_FILE,
  VAE_FILE,
  writeModelConfigs,
} from '../../engine/world/files.ts';
import { AttentionLoraSlots, initialFactors, kohyaLora } from '../../engine/world/lora.ts';
import { objectFraction } from '../../engine/world/maps.ts';
import { initialUNet, initialVaeDecoder, WORLD_UNET, WORLD_VAE } from '../../engine/world/model.ts';
import {
  colourOfCode,
  latentCode,
  sceneImage,
  sceneLatent,
  subjectCoverage,
} from '../../engine/world/render.ts';
import {
  BASE_LOOK,
  caption,
  drawScene,
  GRID,
  inside,
  LORA_LOOKS,
  lookOf,
  PLACE_COLOURS,
  type Scene,
} from '../../engine/world/scene.ts';
import { SUPERVISED_GRIDS, TOKENS, unetBatch, unetTrainingGraph } from '../../engine/world/training.ts';
import { fixtureDir } from '../fixtures.ts';

const tokenizer = () => ClipTokenizer.fromDir(join(fixtureDir(), 'model', 'tokenizer'));

describe('the world', () => {
  it('draws the same scene from the same seed, subjects inside the picture and apart', () => {
    assert.deepEqual(drawScene(42), drawScene(42));
    assert.notDeepEqual(drawScene(42), drawScene(43));
    let pairs = 0;
    for (let seed = 0; seed < 200; seed++) {
      const scene = drawScene(seed);
      assert.ok(scene.subjects.length >= 1 && scene.subjects.length <= 2);
      for (const s of scene.subjects) {
        assert.ok(s.x - s.size / 2 >= 0 && s.x + s.size / 2 <= GRID, `seed ${seed}: ${JSON.stringify(s)}`);
        assert.ok(s.y - s.size / 2 >= 0 && s.y + s.size / 2 <= GRID);
      }
      const [a, b] = scene.subjects;
      if (b) {
        pairs++;
        assert.notEqual(a.subject, b.subject);
        const gap = (a.size + b.size) / 2;
        assert.ok(Math.abs(a.x - b.x) > gap || Math.abs(a.y - b.y) > gap, `seed ${seed}: subjects touch`);
      }
    }
    assert.ok(pairs > 60 && pairs < 140, `${pairs} of 200 scenes have two subjects`);
  });

  it('captions a scene the way users type, triggers before their subject', () => {
    const scene = drawScene(1, { subjects: ['cat', 'penguin'], place: 'house', triggers: { cat: 'sks' } });
    assert.equal(caption(scene), 'a sks cat and a penguin in a house');
    const tokens = captionTokens(tokenizer(), scene);
    const t = tokenizer().encode(tokens.text).tokens;
    assert.deepEqual(
      tokens.subjects.map((positions) => positions.map((p) => t[p])),
      [['sks</w>', 'cat</w>'], ['penguin</w>']],
    );
    assert.deepEqual(
      tokens.place.map((p) => t[p]),
      ['house</w>'],
    );
  });

  it('names looks when asked, after the layout, so scenes without words are drawn as before', () => {
    for (let seed = 0; seed < 40; seed++) {
      const plain = drawScene(seed);
      const worded = drawScene(seed, { wordShare: 0.5 });
      assert.deepEqual(
        worded.subjects.map(({ word: _, ...s }) => s),
        plain.subjects,
      );
      assert.ok(plain.subjects.every((s) => s.word === undefined));
    }
    const words = Array.from({ length: 200 }, (_, seed) => drawScene(seed, { wordShare: 0.35 }))
      .flatMap((scene) => scene.subjects)
      .map((s) => s.word);
    const named = words.filter(Boolean).length / words.length;
    assert.ok(named > 0.25 && named < 0.45, `${named} of subjects wear a named look`);
    assert.ok(words.includes('pink') && words.includes('striped'));

    const scene: Scene = {
      place: 'forest',
      subjects: [
        { subject: 'cat', word: 'pink', x: 8, y: 8, size: 10 },
        { subject: 'dog', word: 'pink', x: 22, y: 22, size: 10 },
      ],
    };
    assert.equal(caption(scene), 'a pink cat and a pink dog in a forest');
    assert.equal(lookOf(scene.subjects[0]).name, 'pink');
    const tokens = captionTokens(tokenizer(), scene);
    const t = tokenizer().encode(tokens.text).tokens;
    // Each subject holds its own 'pink', not the first one twice.
    assert.deepEqual(
      tokens.subjects.map((positions) => positions.map((p) => t[p])),
      [
        ['pink</w>', 'cat</w>'],
        ['pink</w>', 'dog</w>'],
      ],
    );
    assert.notDeepEqual(tokens.subjects[0][0], tokens.subjects[1][0]);
  });

  it('draws the latent and the picture of one scene alike', () => {
    const scene = drawScene(5, { subjects: ['penguin'], place: 'beach', triggers: { penguin: 'ohwx' } });
    const [s] = scene.subjects;
    const z = sceneLatent(scene);
    const image = sceneImage(scene);
    // A cell well inside the subject holds its look's code; its pixel has its look's colour.
    const cx = Math.floor(s.x);
    const cy = Math.floor(s.y);
    const cell = [0, 1, 2, 3].map((c) => z[(c * GRID + cy) * GRID + cx]);
    const pink = LORA_LOOKS.ohwx.look.colour;
    latentCode(pink, true).forEach((v, c) => {
      assert.ok(Math.abs(v - cell[c]) < 1e-5);
    });
    colourOfCode(cell).forEach((v, c) => {
      assert.ok(Math.abs(v - pink[c]) < 1e-5);
    });
    const side = GRID * 8;
    const px = (c: number) => image[(c * side + Math.round(s.y * 8)) * side + Math.round(s.x * 8)];
    [0, 1, 2].forEach((c) => {
      assert.ok(Math.abs(px(c) - (pink[c] * 2 - 1)) < 1e-5);
    });
    // A corner cell far from it holds the sky.
    const sky = PLACE_COLOURS.beach.top;
    assert.ok(Math.abs(z[0] - latentCode(sky, false)[0]) < 1e-5 || !inside(s, 0.5, 0.5));
  });

  it('measures coverage as area: a subject covers about its shape’s area at every grid', () => {
    const scene = drawScene(9, { subjects: ['cat'] });
    const [s] = scene.subjects;
    const area = Math.PI * (s.size / 2) ** 2;
    for (const grid of [32, 16, 8]) {
      const [cover] = subjectCoverage(scene, grid);
      const cells = cover.reduce((a, v) => a + v, 0) * (GRID / grid) ** 2;
      assert.ok(Math.abs(cells - area) / area < 0.05, `grid ${grid}: ${cells} vs ${area}`);
    }
  });

  it('draws a training batch from (seed, step) alone, so a resumed run replays it', () => {
    const tok = tokenizer();
    const alphas = trainingSchedule(SD15_SCHEDULER_CONFIG as never).alphasCumprod;
    const settings = { batch: 3, captionDropout: 0.1, placeWeight: 0.5 };
    const tokens = (scene: Parameters<typeof captionTokens>[1]) => captionTokens(tok, scene);
    const a = unetBatch(7, 120, settings, alphas, tokens);
    const b = unetBatch(7, 120, settings, alphas, tokens);
    const c = unetBatch(7, 121, settings, alphas, tokens);
    assert.deepEqual(a.noisy, b.noisy);
    assert.deepEqual(a.timesteps, b.timesteps);
    assert.deepEqual(
      a.samples.map((s) => s.caption?.text),
      b.samples.map((s) => s.caption?.text),
    );
    assert.notDeepEqual(a.noisy, c.noisy);
  });

  it('localisation weights reward maps on their subjects and are indifferent to flat maps', () => {
    const tok = tokenizer();
    const alphas = trainingSchedule(SD15_SCHEDULER_CONFIG as never).alphasCumprod;
    const settings = { batch: 4, captionDropout: 0, placeWeight: 0.5 };
    const batch = unetBatch(3, 0, settings, alphas, (scene) => captionTokens(tok, scene));
    SUPERVISED_GRIDS.forEach((grid, k) => {
      const weights = batch.attentionWeights[k];
      const cells = grid * grid;
      const flat = weights.reduce((a, w) => a + w / TOKENS, 0);
      assert.ok(Math.abs(flat) < 1e-5, `grid ${grid}: flat maps score ${flat}`);
      // Maps equal to each supervised region (probability 1 on it) score close to −1.
      let perfect = 0;
      batch.samples.forEach((sample, b) => {
        const cover = subjectCoverage(sample.scene, grid);
        const caption = sample.caption!;
        for (let p = 0; p < cells; p++) {
          const background = 1 - cover.reduce((a, c) => a + c[p], 0);
          const own = new Map<number, number>();
          caption.subjects.forEach((positions, i) => {
            for (const t of positions) own.set(t, cover[i][p]);
          });
          for (const t of caption.place) own.set(t, background);
          for (const [t, a] of own) perfect += weights[(b * cells + p) * TOKENS + t] * a;
        }
      });
      assert.ok(perfect < -0.5, `grid ${grid}: maps on their regions score ${perfect}`);
    });
  });

  it('counts a map’s mass on its own subject, against chance', () => {
    const tok = tokenizer();
    const scene = drawScene(4, { subjects: ['dog', 'cat'] });
    const sample = { scene, caption: captionTokens(tok, scene) };
    const cells = 64;
    const cover = subjectCoverage(scene, 8);
    const onObject = new Float32Array(cells * TOKENS);
    const flat = new Float32Array(cells * TOKENS).fill(1 / TOKENS);
    sample.caption.subjects.forEach((positions, i) => {
      for (let p = 0; p < cells; p++) for (const t of positions) onObject[p * TOKENS + t] = cover[i][p];
    });
    const good = objectFraction(onObject, [sample], 8);
    const chance = objectFraction(flat, [sample], 8);
    // Boundary cells are partly covered, so even a map equal to the coverage keeps some mass off it at 8×8.
    assert.ok(good.own > 0.6 && good.own > 5 * good.chance && good.versusOther > 0.99, JSON.stringify(good));
    assert.ok(Math.abs(chance.own - chance.chance) < 1e-6 && Math.abs(chance.versusOther - 0.5) < 0.15);
  });

  it('builds the UNet training graph on the world’s UNet with one cross-attention map per supervised layer', () => {
    const { graph, report } = unetTrainingGraph(initialUNet(WORLD_UNET, 0), WORLD_UNET, 2, 0.5);
    assert.deepEqual(report.maps.shape, [2, 64, TOKENS]);
    const names = graph.inputs.map((t) => (t.leaf as { name: string }).name);
    assert.ok(
      names.includes('conv_in.weight') && names.includes('attention.16') && names.includes('attention.8'),
    );
  });

  it('writes LoRAs the engine reads back, with the trigger in the metadata', () => {
    const unet = initialUNet(WORLD_UNET, 0);
    const slots = new AttentionLoraSlots();
    unetTrainingGraph(unet, WORLD_UNET, 1, 0, slots, () => false);
    const factors = initialFactors(slots, 1);
    const dir = mkdtempSync(join(tmpdir(), 'world-lora-'));
    try {
      const path = join(dir, 'sks-cat.safetensors');
      writeFileSync(path, kohyaLora(slots, factors, 'sks', 10));
      const lora = readLora(path, { unet, textEncoder: new TensorStore('no text encoder') });
      assert.equal(lora.unmatched.length, 0);
      assert.equal(lora.modules.length, slots.slots.size);
      assert.ok(lora.modules.every((m) => /\.attn[12]\.(to_[qkv]|to_out\.0)$/.test(m.module)));
      assert.equal(lora.triggerCandidates[0], 'sks cat');
      assert.equal(BASE_LOOK.cat.name, 'grey');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the world’s detector', () => {
  it('finds every subject of drawn scenes with its shape and look', () => {
    let subjects = 0;
    for (let seed = 0; seed < 24; seed++) {
      const triggers =
        seed % 3 === 0 ? { cat: 'sks' as const } : seed % 3 === 1 ? { penguin: 'ohwx' as const } : {};
      const scene = drawScene(seed, { triggers });
      const found = detectSubjects(sceneImage(scene), 256, 256);
      const want = scene.subjects.map((s) => `${s.subject}/${lookOf(s).name}`).sort();
      assert.deepEqual(
        found.map((d) => `${d.subject}/${d.look}`).sort(),
        want,
        `seed ${seed}: ${caption(scene)}`,
      );
      subjects += want.length;
    }
    assert.ok(subjects > 30);
  });

  it('reads pictures as a model paints them: soft edges, shifted colours, a patch grown onto a subject', () => {
    const side = 256;
    // A box blur of 4 pixels (a model's rounded corners) and every colour pushed towards blue
    // (the world model paints its grey cat lavender).
    const soften = (image: Float32Array) => {
      const out = new Float32Array(image.length);
      const r = 4;
      for (let c = 0; c < 3; c++)
        for (let y = 0; y < side; y++)
          for (let x = 0; x < side; x++) {
            let sum = 0;
            let n = 0;
            for (let dy = -r; dy <= r; dy++)
              for (let dx = -r; dx <= r; dx++) {
                const yy = Math.min(side - 1, Math.max(0, y + dy));
                const xx = Math.min(side - 1, Math.max(0, x + dx));
                sum += image[(c * side + yy) * side + xx];
                n++;
              }
            out[(c * side + y) * side + x] = sum / n + (c === 2 ? 0.2 : -0.05);
          }
      return out;
    };
    for (let seed = 0; seed < 12; seed++) {
      const scene = drawScene(seed, seed % 2 ? { triggers: { penguin: 'ohwx' } } : {});
      const found = detectSubjects(soften(sceneImage(scene)), side, side);
      assert.deepEqual(
        found.map((d) => `${d.subject}/${d.look}`).sort(),
        scene.subjects.map((s) => `${s.subject}/${lookOf(s).name}`).sort(),
        `seed ${seed}: ${caption(scene)}`,
      );
    }
    // A square with a patch of off-colour background grown onto its side is still a square.
    const scene = drawScene(5, { subjects: ['penguin'], place: 'house' });
    const image = sceneImage(scene);
    const s = scene.subjects[0];
    const [x0, y0] = [Math.round((s.x + s.size / 2) * 8) - 2, Math.round((s.y - s.size / 4) * 8)];
    for (let y = y0; y < y0 + 30; y++)
      for (let x = x0; x < Math.min(side - 12, x0 + 40); x++)
        [0.7, 0.8, 0.45].forEach((v, c) => {
          image[(c * side + y) * side + x] = v * 2 - 1;
        });
    assert.deepEqual(
      detectSubjects(image, side, side).map((d) => `${d.subject}/${d.look}`),
      ['penguin/black'],
    );
  });

  it('takes no blob for a subject: a long bar, or a triangle standing on its apex', () => {
    const side = 256;
    const image = sceneImage({ place: 'house', subjects: [] });
    const paint = (inside: (x: number, y: number) => boolean, rgb: readonly number[]) => {
      for (let y = 0; y < side; y++)
        for (let x = 0; x < side; x++)
          if (inside(x, y)) for (let c = 0; c < 3; c++) image[(c * side + y) * side + x] = rgb[c] * 2 - 1;
    };
    paint((x, y) => x >= 20 && x < 140 && y >= 20 && y < 50, BASE_LOOK.cat.colour);
    paint((x, y) => y >= 120 && y < 220 && Math.abs(x - 180) <= (220 - y) / 2, BASE_LOOK.dog.colour);
    assert.deepEqual(detectSubjects(image, side, side), []);
  });

  it('finds nothing in an empty place', () => {
    const scene = { place: 'beach' as const, subjects: [] };
    assert.deepEqual(detectSubjects(sceneImage(scene), 256, 256), []);
  });
});

describe('the world model on disk', () => {
  it('opens as an SD 1.5 diffusers folder the engine samples from, with maps for each subject', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'world-model-'));
    try {
      const fixture = join(fixtureDir(), 'model');
      writeModelConfigs(dir, WORLD_UNET, WORLD_VAE);
      assert.equal(hasTextParts(dir), false);
      copyTextParts(dir, fixture);
      assert.equal(hasTextParts(dir), true);
      writeFileSync(join(dir, UNET_FILE), initialUNet(WORLD_UNET, 0).encode({ format: 'pt' }));
      writeFileSync(join(dir, VAE_FILE), initialVaeDecoder(WORLD_VAE, 0).encode({ format: 'pt' }));
      const ck = openCheckpoint(dir);
      assert.deepEqual(ck.unet.config.down_block_types, WORLD_UNET.down_block_types);
      const sampler = await WorldSampler.open(ck);
      try {
        const s = await sampler.sample({ subjects: ['cat', 'dog'], place: 'forest' }, 3, 2);
        assert.equal(s.image.length, 3 * 256 * 256);
        assert.equal(s.maps.length, 2);
        for (const map of s.maps) {
          assert.equal(map.length, 64);
          assert.ok(map.every((v) => v > 0 && v < 1));
        }
      } finally {
        await sampler.release();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
