// bot/render: every picture is decoded back with sharp and checked pixel by pixel.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { promptNotes } from '../../bot/render/composition.ts';
import {
  attentionMapsSheet,
  attentionSheetLayout,
  BACKGROUND_SWATCH,
  DEFAULT_OVERLAY_OPACITY,
  DISCORD_DEFAULT_ATTACHMENT_BYTES,
  discordAttachmentLimit,
  type EncodedImage,
  encodeImage,
  imageToRgb,
  LORA_PALETTE,
  latentPreview,
  latentToRgb,
  loraColor,
  type MaskSet,
  MIN_ENCODE_BYTES,
  maskCoverage,
  maskGrid,
  maskGridLayout,
  maskLegend,
  maskOverlay,
  ownershipShares,
  percentagesSummingTo100,
  type Rgb,
  type RgbImage,
  SD15_LATENT_RGB,
  slackFileLimit,
  vaeValueToByte,
  viridis,
} from '../../bot/render/index.ts';
import { fitLabel, LABEL_FONTS, renderLabel, wrapLabel } from '../../bot/render/text.ts';
import type { CompositionResult } from '../../engine/clora/engine.ts';

interface Decoded {
  width: number;
  height: number;
  data: Uint8Array;
  format: string | undefined;
}

async function decode(bytes: Uint8Array): Promise<Decoded> {
  const { data, info } = await sharp(bytes).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const { format } = await sharp(bytes).metadata();
  assert.equal(info.channels, 3);
  return { width: info.width, height: info.height, data: new Uint8Array(data), format };
}

function pixel(image: Decoded | RgbImage, x: number, y: number): Rgb {
  const i = (y * image.width + x) * 3;
  return [image.data[i]!, image.data[i + 1]!, image.data[i + 2]!];
}

const same = (a: Rgb, b: Rgb) => a[0] === b[0] && a[1] === b[1] && a[2] === b[2];
const near = (a: Rgb, b: Rgb, tolerance = 1) => a.every((v, c) => Math.abs(v - b[c]!) <= tolerance);
const key = (c: Rgb) => c.join(',');
/** Independent float reference for a translucent fill. */
const blended = (under: Rgb, over: Rgb, alpha: number): Rgb =>
  under.map((u, c) => u + (over[c]! - u) * alpha) as unknown as Rgb;

function uniformImage(width: number, height: number, color: Rgb): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let p = 0; p < width * height; p++) data.set(color, p * 3);
  return { width, height, data };
}

function noiseRgb(width: number, height: number, seed: number): Uint8Array {
  const data = new Uint8Array(width * height * 3);
  let state = seed;
  for (let i = 0; i < data.length; i++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    data[i] = state >>> 24;
  }
  return data;
}

/** Chunk types of a PNG file, in order. */
function pngChunks(bytes: Uint8Array): string[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const types: string[] = [];
  for (let at = 8; at < bytes.length; ) {
    const length = view.getUint32(at);
    types.push(String.fromCharCode(...bytes.subarray(at + 4, at + 8)));
    at += 12 + length;
  }
  return types;
}

describe('imageToRgb', () => {
  it('maps [-1, 1] CHW to HWC bytes with clamping', () => {
    const w = 3;
    const h = 2;
    const plane = w * h;
    const chw = new Float32Array(3 * plane);
    const r = [-1, 0, 1, -2, 2, Number.NaN];
    r.forEach((v, p) => {
      chw[p] = v;
      chw[plane + p] = 0.5;
      chw[2 * plane + p] = -0.5;
    });
    const rgb = imageToRgb(chw, w, h);
    assert.deepEqual([...rgb.filter((_, i) => i % 3 === 0)], [0, 128, 255, 0, 255, 0]);
    assert.ok(rgb.filter((_, i) => i % 3 === 1).every((v) => v === 191)); // 0.75·255 = 191.25
    assert.ok(rgb.filter((_, i) => i % 3 === 2).every((v) => v === 64)); // 0.25·255 = 63.75
  });

  it('rounds exact float32 ties to even, like diffusers (numpy round)', () => {
    // Find float32 inputs whose float32 pipeline lands exactly on k + 0.5.
    const ties: Array<[number, number]> = [];
    for (let k = 1; k < 254 && ties.length < 4; k++) {
      const guess = Math.fround(((k + 0.5) / 255 - 0.5) * 2);
      for (let ulp = -64; ulp <= 64; ulp++) {
        const x = Math.fround(guess + ulp * 2 ** -30);
        const unit = Math.fround(Math.fround(x / 2) + 0.5);
        if (Math.fround(unit * 255) === k + 0.5) {
          ties.push([x, k]);
          break;
        }
      }
    }
    assert.ok(ties.length >= 2, 'no exact ties found to test');
    for (const [x, k] of ties) assert.equal(vaeValueToByte(x), k % 2 === 0 ? k : k + 1);
  });

  it('rejects a buffer of the wrong size', () => {
    assert.throws(() => imageToRgb(new Float32Array(10), 2, 2), RangeError);
  });
});

describe('encodeImage', () => {
  const W = 256;
  const H = 256;
  const noise = noiseRgb(W, H, 12345);
  const raw = { width: W, height: H, channels: 3 as const };

  it('gives lossless PNG when it fits', async () => {
    const out = await encodeImage(noise, W, H, { maxBytes: DISCORD_DEFAULT_ATTACHMENT_BYTES });
    assert.equal(out.format, 'png');
    assert.equal(out.mime, 'image/png');
    assert.equal(out.ext, 'png');
    const back = await decode(out.bytes);
    assert.equal(back.format, 'png');
    assert.deepEqual(back.data, noise);
  });

  it('falls back PNG → WebP → JPEG → downscale, never over maxBytes', async () => {
    const png = await encodeImage(noise, W, H, { maxBytes: 10 * 1024 * 1024 });
    const webp = await encodeImage(noise, W, H, { maxBytes: png.bytes.length - 1 });
    assert.equal(webp.format, 'webp');
    assert.equal(webp.quality, 90);
    assert.ok(webp.bytes.length < png.bytes.length);
    assert.equal((await decode(webp.bytes)).format, 'webp');

    // Budget just under the lowest WebP step (q60): only JPEG can fit at full size.
    const webpFloor = (await sharp(noise, { raw }).webp({ quality: 60, effort: 4 }).toBuffer()).length;
    const jpegFloor = (await sharp(noise, { raw }).jpeg({ quality: 45, mozjpeg: true }).toBuffer()).length;
    assert.ok(jpegFloor < webpFloor - 1, 'test image must compress better as JPEG q45 than WebP q60');
    const jpeg = await encodeImage(noise, W, H, { maxBytes: webpFloor - 1 });
    assert.equal(jpeg.format, 'jpeg');
    assert.equal(jpeg.mime, 'image/jpeg');
    assert.equal(jpeg.ext, 'jpg');
    assert.deepEqual([jpeg.width, jpeg.height], [W, H]);
    assert.ok(jpeg.bytes.length <= webpFloor - 1);
    assert.equal((await decode(jpeg.bytes)).format, 'jpeg');

    const tight = Math.floor(jpegFloor / 3);
    const small = await encodeImage(noise, W, H, { maxBytes: tight });
    assert.ok(small.bytes.length <= tight);
    assert.ok(
      small.width < W && small.height < H,
      `expected a downscale, got ${small.width}×${small.height}`,
    );
    const back = await decode(small.bytes);
    assert.deepEqual([back.width, back.height], [small.width, small.height]);

    const floor = await encodeImage(noise, W, H, { maxBytes: MIN_ENCODE_BYTES });
    assert.ok(floor.bytes.length <= MIN_ENCODE_BYTES);
  });

  it('keeps the aspect ratio when it downscales', async () => {
    const wide = noiseRgb(300, 100, 7);
    const out = await encodeImage(wide, 300, 100, { maxBytes: 3000 });
    assert.ok(out.bytes.length <= 3000);
    assert.ok(Math.abs(out.width / out.height - 3) < 0.15, `${out.width}×${out.height}`);
  });

  it('starts at the preferred format', async () => {
    const smooth = uniformImage(64, 64, [10, 200, 30]).data;
    assert.equal((await encodeImage(smooth, 64, 64, { maxBytes: 1e6, prefer: 'webp' })).format, 'webp');
    assert.equal((await encodeImage(smooth, 64, 64, { maxBytes: 1e6, prefer: 'jpeg' })).format, 'jpeg');
  });

  it('refuses a budget below MIN_ENCODE_BYTES and a wrong buffer size', async () => {
    await assert.rejects(encodeImage(noise, W, H, { maxBytes: MIN_ENCODE_BYTES - 1 }), RangeError);
    await assert.rejects(encodeImage(noise, W + 1, H, { maxBytes: 1e6 }), RangeError);
  });

  it('is deterministic: same bytes across calls and libvips thread counts, no timestamp chunks', async () => {
    const budgets = [10 * 1024 * 1024, 100_000, 30_000, 5_000];
    const first = await Promise.all(budgets.map((maxBytes) => encodeImage(noise, W, H, { maxBytes })));
    const threads = sharp.concurrency();
    sharp.concurrency(1);
    try {
      const second = await Promise.all(budgets.map((maxBytes) => encodeImage(noise, W, H, { maxBytes })));
      for (const [i, a] of first.entries()) {
        assert.ok(Buffer.compare(a.bytes, second[i]!.bytes) === 0, `budget ${budgets[i]}`);
      }
    } finally {
      sharp.concurrency(threads);
    }
    const chunks = pngChunks(first[0]!.bytes);
    assert.deepEqual(
      chunks.filter((c) => ['tIME', 'tEXt', 'zTXt', 'iTXt', 'iCCP', 'eXIf'].includes(c)),
      [],
      `PNG chunks: ${chunks.join(' ')}`,
    );
  });
});

describe('platform limits', () => {
  it('uses the interaction limit when Discord sends one, else 10 MiB', () => {
    assert.equal(discordAttachmentLimit(), 10 * 1024 * 1024);
    assert.equal(discordAttachmentLimit(null), 10 * 1024 * 1024);
    assert.equal(discordAttachmentLimit(52_428_800), 52_428_800);
    assert.equal(slackFileLimit(), 1024 ** 3);
    assert.equal(slackFileLimit(5_000_000), 5_000_000);
  });
});

// 256² image → 8×8 attention cells of 32×32 pixels.
const R = 8;
const GREY: Rgb = [120, 120, 120];
function exampleMasks(): MaskSet {
  const a = new Uint8Array(R * R);
  const b = new Uint8Array(R * R);
  for (let y = 1; y <= 4; y++) for (let x = 1; x <= 3; x++) a[y * R + x] = 1; // 12 cells
  for (let y = 3; y <= 6; y++) for (let x = 3; x <= 6; x++) b[y * R + x] = 1; // 16 cells, 2 shared
  return {
    rows: R,
    cols: R,
    loras: [
      { name: 'tabby-cat', mask: a },
      { name: 'plush-penguin', mask: b },
    ],
  };
}

describe('maskOverlay', () => {
  it('colours exactly the pixels the masks claim, stripes overlaps, outlines regions', async () => {
    const masks = exampleMasks();
    const out = await maskOverlay(uniformImage(256, 256, GREY), masks);
    assert.equal(out.format, 'png');
    const img = await decode(out.bytes);
    assert.equal(img.width, 256);
    assert.ok(img.height > 256, 'legend strip below the image');

    const colors = [LORA_PALETTE[0]!, LORA_PALETTE[1]!];
    const fills = colors.map((c) => blended(GREY, c, DEFAULT_OVERLAY_OPACITY));
    const seen = { fill: [0, 0], outline: [0, 0], overlapFill: new Set<number>() };
    for (let y = 0; y < 256; y++) {
      for (let x = 0; x < 256; x++) {
        const cell = Math.floor(y / 32) * R + Math.floor(x / 32);
        const owners = masks.loras.flatMap((l, i) => (l.mask[cell] ? [i] : []));
        const got = pixel(img, x, y);
        if (owners.length === 0) {
          assert.deepEqual(got, GREY, `unclaimed pixel (${x}, ${y}) changed`);
          continue;
        }
        const fillOwner = owners.find((i) => near(got, fills[i]!));
        const outlineOwner = owners.find((i) => same(got, colors[i]!));
        assert.ok(
          fillOwner !== undefined || outlineOwner !== undefined,
          `pixel (${x}, ${y}) of ${owners} is ${got}`,
        );
        if (fillOwner !== undefined) {
          seen.fill[fillOwner]!++;
          if (owners.length === 2) seen.overlapFill.add(fillOwner);
        }
        if (outlineOwner !== undefined) seen.outline[outlineOwner]!++;
      }
    }
    assert.ok(seen.fill.every((n) => n > 0) && seen.outline.every((n) => n > 0), JSON.stringify(seen.fill));
    assert.equal(seen.overlapFill.size, 2, 'both colours show in the overlap');
    // Outline at the boundary between claimed and unclaimed: cell (1,1) of A has its left edge at x = 32.
    assert.deepEqual(pixel(img, 32, 50), colors[0]);
    assert.ok(near(pixel(img, 40, 50), fills[0]!));
  });

  it('draws a legend with each LoRA swatch below the image', async () => {
    const img = await decode((await maskOverlay(uniformImage(256, 256, GREY), exampleMasks())).bytes);
    const legendColors = new Map<string, number>();
    for (let y = 256; y < img.height; y++) {
      for (let x = 0; x < img.width; x++) {
        const k = key(pixel(img, x, y));
        legendColors.set(k, (legendColors.get(k) ?? 0) + 1);
      }
    }
    const background = [...legendColors.entries()].sort((a, b) => b[1] - a[1])[0]![0];
    const ink = [...legendColors.entries()].filter(([k]) => k !== background).reduce((n, [, c]) => n + c, 0);
    assert.ok(ink > 500, `legend has ${ink} non-background pixels`);
    for (const color of [LORA_PALETTE[0]!, LORA_PALETTE[1]!, BACKGROUND_SWATCH]) {
      assert.ok((legendColors.get(key(color)) ?? 0) >= 25, `swatch ${color} in legend`);
    }
  });

  it('uses the given palette and downscales large images to maxSide', async () => {
    const palette: Rgb[] = [
      [255, 0, 0],
      [0, 0, 255],
    ];
    const out = await maskOverlay(uniformImage(512, 512, GREY), exampleMasks(), { palette, maxSide: 256 });
    const img = await decode(out.bytes);
    assert.equal(img.width, 256);
    assert.deepEqual(pixel(img, 32, 50), palette[0]);
    assert.ok(near(pixel(img, 40, 50), blended(GREY, palette[0]!, DEFAULT_OVERLAY_OPACITY), 2));
  });

  it('rejects masks of the wrong size', async () => {
    const bad: MaskSet = { rows: R, cols: R, loras: [{ name: 'x', mask: new Uint8Array(R * R - 1) }] };
    await assert.rejects(maskOverlay(uniformImage(64, 64, GREY), bad), /'x'/);
  });
});

describe('maskGrid', () => {
  it('has the layout size, one tile per mask plus background, cells in the LoRA colour', async () => {
    const masks = exampleMasks();
    const layout = await maskGridLayout(masks);
    const img = await decode((await maskGrid(masks)).bytes);
    assert.deepEqual([img.width, img.height], [layout.grid.width, layout.grid.height]);
    assert.equal(layout.tiles.length, 3);
    assert.deepEqual([layout.grid.columns, layout.grid.rows], [3, 1]);
    // Independent of the layout code: 3 tiles of (8 cells × 16 px + 2 px frame), 12 px gaps and margins.
    assert.equal(img.width, 12 * 2 + 3 * (8 * 16 + 2) + 2 * 12);

    const background = pixel(img, 0, 0);
    const empty = pixel(img, layout.grid.margin + 1 + 0 * layout.cell + 2, layout.grid.margin + 3);
    const backgroundMask = Uint8Array.from(masks.loras[0]!.mask, (a, i) =>
      a || masks.loras[1]!.mask[i] ? 0 : 1,
    );
    const expected = [
      { mask: masks.loras[0]!.mask, color: loraColor(0) },
      { mask: masks.loras[1]!.mask, color: loraColor(1) },
      { mask: backgroundMask, color: BACKGROUND_SWATCH },
    ];
    expected.forEach(({ mask, color }, t) => {
      const x0 = layout.grid.margin + t * (layout.grid.tileWidth + layout.grid.gap) + 1;
      const y0 = layout.grid.margin + 1;
      for (let row = 0; row < R; row++) {
        for (let col = 0; col < R; col++) {
          const centre = pixel(
            img,
            x0 + col * layout.cell + layout.cell / 2,
            y0 + row * layout.cell + layout.cell / 2,
          );
          assert.deepEqual(centre, mask[row * R + col] ? color : empty, `tile ${t} cell ${row},${col}`);
        }
      }
      let ink = 0;
      for (let y = layout.grid.margin + layout.captionTop; y < img.height - layout.grid.margin; y++) {
        for (let x = x0; x < x0 + layout.thumbWidth; x++) if (!same(pixel(img, x, y), background)) ink++;
      }
      assert.ok(ink > 100, `tile ${t} caption has ${ink} ink pixels`);
    });
  });

  it('wraps many masks into rows', async () => {
    const loras = Array.from({ length: 5 }, (_, i) => ({
      name: `lora ${i}`,
      mask: new Uint8Array(R * R).fill(i % 2),
    }));
    const masks: MaskSet = { rows: R, cols: R, loras };
    const layout = await maskGridLayout(masks);
    assert.deepEqual([layout.grid.columns, layout.grid.rows], [3, 2]); // 6 tiles with the background
    const img = await decode((await maskGrid(masks)).bytes);
    assert.deepEqual([img.width, img.height], [layout.grid.width, layout.grid.height]);
  });

  it('reports coverage as the share of set cells', () => {
    assert.equal(maskCoverage(exampleMasks().loras[0]!.mask), 12 / 64);
  });
});

describe('attentionMapsSheet', () => {
  const r = 16;
  function peakMap(minCell: number, maxCell: number): Float32Array {
    const values = new Float32Array(r * r).fill(0.05);
    values[minCell] = 0.001;
    values[maxCell] = 0.3;
    return values;
  }

  it('maps each map min and max to the viridis ends, flat maps to the low end', async () => {
    const set = {
      rows: r,
      cols: r,
      maps: [
        { label: 'cat (P0)', values: peakMap(0, 37) },
        { label: 'sks (P1)', values: new Float32Array(r * r).fill(0.2) },
      ],
    };
    const layout = await attentionSheetLayout(set);
    const img = await decode((await attentionMapsSheet(set)).bytes);
    assert.deepEqual([img.width, img.height], [layout.width, layout.height]);
    const low: Rgb = [0x44, 0x01, 0x54];
    const high: Rgb = [0xfd, 0xe7, 0x25];
    const centre = (tile: number, cell: number): Rgb =>
      pixel(
        img,
        layout.grid.margin +
          tile * (layout.grid.tileWidth + layout.grid.gap) +
          1 +
          (cell % r) * layout.cell +
          4,
        layout.grid.margin + 1 + Math.floor(cell / r) * layout.cell + 4,
      );
    assert.deepEqual(centre(0, 0), low);
    assert.deepEqual(centre(0, 37), high);
    const middle = centre(0, 100);
    assert.ok(!same(middle, low) && !same(middle, high));
    for (const cell of [0, 37, 100, 255]) assert.deepEqual(centre(1, cell), low);
    // Colour bar runs from the low end to the high end.
    const barY = layout.bar.y + 2;
    assert.deepEqual(pixel(img, layout.bar.x, barY), low);
    assert.deepEqual(pixel(img, layout.bar.x + layout.bar.width - 1, barY), high);
  });

  it('with a shared scale, a weaker map does not reach the high end', async () => {
    const strong = peakMap(0, 10);
    const weak = strong.map((v) => v / 2);
    const set = {
      rows: r,
      cols: r,
      maps: [
        { label: 'a', values: strong },
        { label: 'b', values: weak },
      ],
    };
    const layout = await attentionSheetLayout(set, { normalize: 'shared' });
    const img = await decode((await attentionMapsSheet(set, { normalize: 'shared' })).bytes);
    const x = layout.grid.margin + layout.grid.tileWidth + layout.grid.gap + 1 + 10 * layout.cell + 4;
    const got = pixel(img, x, layout.grid.margin + 5);
    // Shared range: the weak map's minimum to the strong map's maximum.
    assert.deepEqual(got, viridis((weak[10]! - weak[0]!) / (strong[10]! - weak[0]!)));
    assert.ok(!same(got, viridis(1)));
  });

  it('labels every tile', async () => {
    const set = { rows: r, cols: r, maps: [{ label: 'penguin (P2)', values: peakMap(3, 4) }] };
    const layout = await attentionSheetLayout(set);
    const img = await decode((await attentionMapsSheet(set)).bytes);
    const background = pixel(img, 0, 0);
    let ink = 0;
    const top = layout.grid.margin + layout.captionTop;
    for (let y = top; y < top + 20; y++) {
      for (let x = layout.grid.margin; x < layout.grid.margin + layout.grid.tileWidth; x++) {
        if (!same(pixel(img, x, y), background)) ink++;
      }
    }
    assert.ok(ink > 100, `caption has ${ink} ink pixels`);
  });

  it('computes viridis ends from its control points', () => {
    assert.deepEqual(viridis(0), [0x44, 0x01, 0x54]);
    assert.deepEqual(viridis(1), [0xfd, 0xe7, 0x25]);
    assert.deepEqual(viridis(-3), viridis(0));
    assert.deepEqual(viridis(Number.NaN), viridis(0));
  });
});

describe('latentPreview', () => {
  it('projects the latent linearly: zero is mid-grey, channel 4 darkens', () => {
    const h = 2;
    const w = 2;
    const latent = new Float32Array(4 * h * w);
    latent[3 * h * w + 1] = 1; // pixel 1: channel 4 = 1
    const rgb = latentToRgb(latent, h, w);
    assert.deepEqual([...rgb.subarray(0, 3)], [128, 128, 128]);
    const [r4, g4, b4] = SD15_LATENT_RGB.matrix[3]!;
    assert.deepEqual(
      [...rgb.subarray(3, 6)],
      [r4, g4, b4].map((v) => Math.round((v / 2 + 0.5) * 255)),
    );
    assert.ok(rgb[5]! < rgb[3]!, 'channel 4 pulls blue down most');
  });

  it('encodes a small upscaled preview within maxBytes', async () => {
    const h = 64;
    const w = 48;
    const latent = new Float32Array(4 * h * w).map((_, i) => Math.sin(i / 50));
    const webp = await latentPreview(latent, h, w, { maxBytes: 64 * 1024 });
    assert.equal(webp.format, 'webp');
    assert.deepEqual([webp.width, webp.height], [192, 256]);
    assert.ok(webp.bytes.length <= 64 * 1024);
    const png = await latentPreview(latent, h, w, { prefer: 'png', size: 128 });
    const img = await decode(png.bytes);
    assert.deepEqual([img.format, img.width, img.height], ['png', 96, 128]);
  });
});

describe('render determinism', () => {
  it('gives byte-identical pictures for the same input, whatever libvips threads and SIMD', async () => {
    const masks = exampleMasks();
    const image: RgbImage = { width: 320, height: 320, data: noiseRgb(320, 320, 99) };
    const maps = {
      rows: 8,
      cols: 8,
      maps: [{ label: 'cat (P0)', values: new Float32Array(64).map((_, i) => i) }],
    };
    const latent = new Float32Array(4 * 16 * 16).map((_, i) => Math.cos(i));
    const renderAll = (): Promise<EncodedImage[]> =>
      Promise.all([
        maskOverlay(image, masks, { maxSide: 256 }),
        maskGrid(masks),
        encodeImage(image.data, 320, 320, { maxBytes: 20_000 }),
        attentionMapsSheet(maps),
        latentPreview(latent, 16, 16),
      ]);
    const a = await renderAll();
    const [threads, simd] = [sharp.concurrency(), sharp.simd()];
    sharp.concurrency(1);
    sharp.simd(false);
    let b: EncodedImage[];
    try {
      b = await renderAll();
    } finally {
      sharp.concurrency(threads);
      sharp.simd(simd);
    }
    for (const [i, picture] of a.entries()) {
      assert.ok(Buffer.compare(picture.bytes, b[i]!.bytes) === 0, `picture ${i}`);
    }
  });
});

describe('labels', () => {
  const ink = (label: { coverage: Uint8Array }) => label.coverage.reduce((n, v) => n + (v > 127 ? 1 : 0), 0);

  it('draw names in any script and emoji as typed, from the fonts the npm packages ship', async () => {
    for (const { file } of LABEL_FONTS) assert.match(file, /node_modules[\\/]@expo-google-fonts[\\/]/);
    const question = await renderLabel('?', 13);
    // 猫 and 🐧 are in no font this host has (Debian's DejaVu lacks them): ink proves the shipped fonts draw them.
    for (const text of ['猫', '🐧', 'é']) {
      const label = await renderLabel(text, 13);
      assert.ok(ink(label) > 8, `'${text}' has ink`);
      assert.ok(
        !Buffer.from(label.coverage).equals(Buffer.from(question.coverage)),
        `'${text}' is not drawn as '?'`,
      );
    }
    const cafe = await renderLabel('café', 13);
    assert.ok(!Buffer.from(cafe.coverage).equals(Buffer.from((await renderLabel('caf?', 13)).coverage)));
    assert.equal(cafe.height, (await renderLabel('猫 🐧', 13)).height, 'every line has the same height');
    assert.ok((await renderLabel('<b>&', 13)).width > 0, 'markup characters are text');
  });

  it('wraps at spaces, breaks long words, and cuts what is left with …', async () => {
    const lines = await wrapLabel('plush penguin wearing a long woollen scarf', 90, 13, 2);
    assert.equal(lines.length, 2);
    assert.equal(lines[0]!.text, 'plush penguin');
    assert.ok(lines.every((l) => l.width <= 90));
    assert.match(lines[1]!.text, /…$/);
    const word = await wrapLabel('abcdefghijklmnopqrstuvwxyz', 60, 13, 3);
    assert.ok(word.length >= 2 && word.every((l) => l.width <= 60));
    assert.equal((await fitLabel('short', 200, 13)).text, 'short');
  });
});

describe('mask legend', () => {
  it('gives shares of the picture that add up to 100%: shared cells split between their LoRAs', () => {
    const shares = ownershipShares(exampleMasks());
    // 12 and 16 cells with 2 shared: 10 + 2/2, 14 + 2/2, and 64 − 26 unclaimed.
    assert.deepEqual(shares, { loras: [11 / 64, 15 / 64], background: 38 / 64, shared: 2 / 64 });
    assert.deepEqual(percentagesSummingTo100([...shares.loras, shares.background]), [
      '17.2%',
      '23.4%',
      '59.4%',
    ]);
    assert.deepEqual(percentagesSummingTo100([1 / 3, 1 / 3, 1 / 3]), ['33.4%', '33.3%', '33.3%']);
    assert.deepEqual(percentagesSummingTo100([0.00001, 0.99999]), ['<0.1%', '100.0%']);
  });

  it('keeps whole names at 128 px, wrapping them, and says how striped cells count', async () => {
    const masks: MaskSet = {
      ...exampleMasks(),
      loras: exampleMasks().loras.map((l, i) => ({
        ...l,
        name: ['cat: tabby-the-great-cat', '猫: 🐧 plush'][i]!,
      })),
    };
    const out = await maskOverlay(uniformImage(128, 128, GREY), masks);
    const img = await decode(out.bytes);
    assert.equal(img.width, 256, 'a 128 px image is enlarged so the legend has room');
    assert.deepEqual(
      pixel(img, 2 * 32 + 8, 2 * 50),
      blended(GREY, LORA_PALETTE[0]!, DEFAULT_OVERLAY_OPACITY).map(Math.round),
    );
    const legend = await maskLegend(masks, 256, [LORA_PALETTE[0]!, LORA_PALETTE[1]!]);
    const texts = legend.placed.map((e) => `${e.lines.map((l) => l.text).join(' ')} ${e.detail.text}`);
    assert.deepEqual(texts, ['cat: tabby-the-great-cat 17.2%', '猫: 🐧 plush 23.4%', 'background 59.4%']);
    assert.ok(
      legend.placed.every(
        (e) => e.x + 12 + 4 + Math.max(...e.lines.map((l) => l.width)) + 4 + e.detail.width <= 256,
      ),
    );
    assert.equal(
      legend.note?.labels.map((l) => l.text).join(' '),
      'Striped: drawn by several LoRAs, split evenly between them.',
    );
    assert.ok(img.height >= 256 + legend.height);
  });
});

describe('attention maps sheet notes', () => {
  it("explains P0, P1 … with each branch's prompt", async () => {
    const result = {
      prompts: ['a cat in a house', 'a tabby cat in a house'],
      spec: { subjects: [{ word: 'cat', lora: { name: 'tabby', path: '/t' } }] },
    } as unknown as CompositionResult;
    const notes = promptNotes(result);
    assert.deepEqual(notes, [
      'P0 = the base prompt: "a cat in a house"',
      'P1 = cat with tabby: "a tabby cat in a house"',
    ]);
    const set = {
      rows: 4,
      cols: 4,
      maps: [{ label: 'cat (P1)', values: new Float32Array(16).fill(1) }],
      notes,
    };
    const layout = await attentionSheetLayout(set);
    assert.deepEqual(layout.notes.lines.map((l) => l.text).join(' '), notes.join(' '));
    const plain = await attentionSheetLayout({ ...set, notes: [] });
    assert.ok(layout.height > plain.height, 'the notes get their own lines');
    const img = await decode((await attentionMapsSheet(set)).bytes);
    assert.equal(img.height, layout.height);
  });
});
