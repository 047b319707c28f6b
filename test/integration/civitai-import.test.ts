// /lora add civitai:… below the chat adapters: references read from ids, links and AIRs, and
// the import against the Civitai stand-in into a real LoRA library checked against the tiny
// SD 1.5 fixture — metadata before download, each of Civitai's errors, the hash check, the
// redirect to the file host (without the token), and the sidecar and preview it leaves.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { licenceOf, pickFile } from '../../bot/civitai/import.ts';
import {
  CivitaiClient,
  importFromCivitai,
  isSd1,
  looksLikeCivitai,
  readAddText,
  readCivitaiReference,
} from '../../bot/civitai/index.ts';
import { LoraLibrary } from '../../bot/library/index.ts';
import { openCheckpoint } from '../../engine/weights/checkpoint.ts';
import { fixtureDir } from '../fixtures.ts';
import { CivitaiStandIn } from '../standins/civitai.ts';

const API_KEY = 'civitai-test-key-0123456789abcdef';
const MB = 1024 * 1024;

describe('Civitai references', () => {
  const read = (text: string) => {
    const r = readCivitaiReference(text);
    assert.ok(r.ok, `${text}: ${r.ok ? '' : r.message}`);
    return r.reference;
  };

  it('reads a version id, a model link with and without ?modelVersionId=, an AIR and a hash', () => {
    assert.deepEqual(read('civitai:128713'), { kind: 'version', versionId: 128713 });
    assert.deepEqual(read('128713'), { kind: 'version', versionId: 128713 });
    assert.deepEqual(read('https://civitai.com/models/4201/tabby-cat?modelVersionId=130072'), {
      kind: 'model',
      modelId: 4201,
      versionId: 130072,
    });
    assert.deepEqual(read('civitai.com/models/4201'), { kind: 'model', modelId: 4201 });
    assert.deepEqual(read('urn:air:sd1:lora:civitai:4201@130072'), {
      kind: 'model',
      modelId: 4201,
      versionId: 130072,
    });
    assert.deepEqual(read('urn:air:sd1:lora:civitai:4201'), { kind: 'model', modelId: 4201 });
    assert.deepEqual(read('civitai:a5f58eb1c3'), { kind: 'hash', hash: 'A5F58EB1C3' });
    assert.deepEqual(read(`civitai:${'ab'.repeat(32)}`), { kind: 'hash', hash: 'AB'.repeat(32) });
  });

  it('refuses what it cannot read, saying how to write it; an SDXL AIR is refused before any call', () => {
    const bad = (text: string, pattern: RegExp) => {
      const r = readCivitaiReference(text);
      assert.equal(r.ok, false, text);
      assert.match(r.ok ? '' : r.message, pattern);
    };
    bad('civitai:tabby', /not a Civitai model-version id: write `civitai:<model-version id>`/);
    bad('https://civitai.com/images/123', /not a model page/);
    bad('urn:air:sdxl:lora:civitai:1@2', /is for sdxl, and this bot composes SD 1.5 LoRAs only/);
    bad('urn:air:sd1:checkpoint:civitai:1@2', /names a checkpoint, not a LoRA/);
    bad('urn:air:sd1:lora:huggingface:1@2', /names huggingface, not Civitai/);
    bad('civitai:0', /not a Civitai model-version id/);
  });

  it('tells Civitai references from other text after /lora add', () => {
    assert.ok(looksLikeCivitai('civitai:12'));
    assert.ok(looksLikeCivitai('https://civitai.com/models/1'));
    assert.ok(!looksLikeCivitai('tabby'));
    assert.deepEqual(readAddText('civitai:12 barn owl --replace'), {
      reference: 'civitai:12',
      name: 'barn owl',
      replace: true,
    });
    assert.equal(readAddText('tabby'), undefined);
  });

  it('knows SD 1.x base models, safetensors files and licence flags', () => {
    for (const b of ['SD 1.5', 'SD 1.4', 'SD 1.5 LCM', 'SD 1.5 Hyper']) assert.ok(isSd1(b), b);
    for (const b of ['SDXL 1.0', 'SD 2.1', 'Pony', 'Illustrious', 'Flux.1 D']) assert.ok(!isSd1(b), b);
    const file = (name: string, format: string, primary = false) => ({
      name,
      type: 'Model',
      metadata: { format },
      downloadUrl: `https://civitai.com/api/download/models/1?format=${format}`,
      primary,
    });
    const picked = pickFile([file('a.pt', 'PickleTensor', true), file('a.safetensors', 'SafeTensor')]);
    assert.ok(picked.ok && picked.file.name === 'a.safetensors');
    const pickled = pickFile([file('a.pt', 'PickleTensor', true)]);
    assert.match(pickled.ok ? '' : pickled.problem, /only as a pickled file/);
    assert.equal(
      licenceOf({
        id: 1,
        name: 'x',
        allowNoCredit: false,
        allowCommercialUse: ['None'],
        allowDerivatives: false,
        modelVersions: [],
      }),
      'Civitai licence: credit the creator; no commercial use; no derivatives',
    );
  });
});

describe('importing from the Civitai stand-in into the library', { timeout: 120_000 }, () => {
  const fx = fixtureDir();
  const loraBytes = (file: string) => new Uint8Array(readFileSync(join(fx, 'loras', file)));
  const checkpoint = openCheckpoint(join(fx, 'model'));
  const base = { unet: checkpoint.unet.weights, textEncoder: checkpoint.textEncoder.weights };
  const root = mkdtempSync(join(tmpdir(), 'clora-civitai-'));
  let civitai: CivitaiStandIn;
  let library: LoraLibrary;
  let preview: Uint8Array;

  before(async () => {
    civitai = await CivitaiStandIn.start({ apiKey: API_KEY });
    library = await LoraLibrary.open(join(root, 'loras'), base, { watch: false, rescanIntervalMs: 0 });
    preview = new Uint8Array(
      await sharp({ create: { width: 16, height: 16, channels: 3, background: '#c84' } })
        .png()
        .toBuffer(),
    );
  });
  after(async () => {
    library?.close();
    await civitai?.close();
    rmSync(root, { recursive: true, force: true });
  });

  const client = (token?: string) => new CivitaiClient({ apiUrl: civitai.apiUrl, token });
  const run = (text: string, options: { token?: string; name?: string; maxBytes?: number } = {}) => {
    const r = readCivitaiReference(text);
    assert.ok(r.ok);
    return importFromCivitai(r.reference, client(options.token), library, {
      name: options.name,
      maxBytes: options.maxBytes ?? 8 * MB,
    });
  };

  it('adds a version by id: triggers from trainedWords, preview, licence and source in the sidecar', async () => {
    const { modelId, versionId, sha256 } = civitai.addModel({
      name: 'Barn Owl',
      trainedWords: ['brnowl', 'barn owl'],
      file: loraBytes('lora_iv_kohya_locon_unet.safetensors'),
      preview,
      allowNoCredit: false,
    });
    const result = await run(`civitai:${versionId}`);
    assert.ok(result.ok, result.ok ? '' : result.message);
    assert.equal(result.entry.name, 'barn-owl');
    assert.equal(result.source, `https://civitai.com/models/${modelId}?modelVersionId=${versionId}`);
    const entry = library.get('barn-owl');
    assert.ok(entry?.usable);
    assert.deepEqual(entry.triggers, ['brnowl', 'barn owl']);
    assert.equal(entry.triggerSource, 'sidecar');
    assert.equal(entry.source, result.source);
    assert.equal(entry.baseModelClaim, 'SD 1.5');
    assert.match(entry.licence ?? '', /credit the creator; commercial use: Image, RentCivit/);
    assert.equal(entry.sha256, sha256.toLowerCase());
    assert.equal(entry.preview?.kind, 'file');
    assert.deepEqual(new Uint8Array(readFileSync(join(root, 'loras', 'barn-owl.preview.png'))), preview);
    const sidecar = JSON.parse(readFileSync(join(root, 'loras', 'barn-owl.json'), 'utf8'));
    assert.equal(sidecar.modelVersionId, versionId);
    // The file came through a redirect to the file host.
    assert.ok(civitai.fileHostRequests.some((r) => r.path.startsWith('/model/')));
  });

  it('adds by model link (newest version), by AIR and by hash, under a name of choice', async () => {
    const a = civitai.addModel({
      name: 'Plush A',
      file: loraBytes('lora_ii_kohya_unet_attn_ff.safetensors'),
    });
    const linked = await run(`https://civitai.com/models/${a.modelId}/plush-a`);
    assert.ok(linked.ok && linked.entry.name === 'plush-a');
    const b = civitai.addModel({ name: 'Corgi', file: loraBytes('lora_iii_peft_unet_te.safetensors') });
    const air = await run(`urn:air:sd1:lora:civitai:${b.modelId}@${b.versionId}`, { name: 'my corgi' });
    assert.ok(air.ok && air.entry.name === 'my-corgi', air.ok ? '' : air.message);
    const c = civitai.addModel({ name: 'Tabby Hash', file: loraBytes('lora_i_kohya_unet_te.safetensors') });
    const byHash = await run(`civitai:${c.sha256.slice(0, 10).toLowerCase()}`);
    assert.ok(byHash.ok && byHash.entry.name === 'tabby-hash', byHash.ok ? '' : byHash.message);
    assert.ok(
      civitai.apiRequests.some((r) => r.path === `/api/v1/model-versions/by-hash/${c.sha256.slice(0, 10)}`),
    );
    const cat = civitai.addModel({ name: '猫', file: loraBytes('lora_i_kohya_unet_te.safetensors') });
    const unnamed = await run(`civitai:${cat.versionId}`);
    assert.ok(
      unnamed.ok && unnamed.entry.name === `civitai-${cat.versionId}`,
      unnamed.ok ? '' : unnamed.message,
    );
    const wrong = await run(`https://civitai.com/models/${a.modelId}?modelVersionId=${b.versionId}`);
    assert.match(wrong.ok ? '' : wrong.message, /belongs to model .*check the link/);
  });

  it('refuses SDXL, checkpoints, pickles and oversized files from metadata alone, downloading nothing', async () => {
    const file = loraBytes('lora_i_kohya_unet_te.safetensors');
    const sdxl = civitai.addModel({ name: 'XL Owl', baseModel: 'SDXL 1.0', file });
    const ckpt = civitai.addModel({ name: 'Some Checkpoint', type: 'Checkpoint', file });
    const pickle = civitai.addModel({ name: 'Pickled', format: 'PickleTensor', file });
    const big = civitai.addModel({ name: 'Big One', file });
    const downloads = civitai.fileHostRequests.length;
    const apiDownloads = () => civitai.apiRequests.filter((r) => r.path.startsWith('/api/download/')).length;
    const before = apiDownloads();
    const message = async (text: string, maxBytes?: number) => {
      const r = await run(text, { maxBytes });
      assert.equal(r.ok, false, text);
      return r.ok ? '' : r.message;
    };
    assert.match(
      await message(`civitai:${sdxl.versionId}`),
      /is made for SDXL 1\.0; this bot composes SD 1\.5 LoRAs only/,
    );
    assert.match(await message(`civitai:${ckpt.versionId}`), /is a Checkpoint on Civitai, not a LoRA/);
    assert.match(await message(`civitai:${pickle.versionId}`), /only as a pickled file/);
    assert.match(await message(`civitai:${big.versionId}`, 1024), /LoRAs up to 1 KB can be added/);
    assert.equal(apiDownloads(), before, 'no download was started');
    assert.equal(civitai.fileHostRequests.length, downloads);
    for (const name of ['xl-owl', 'some-checkpoint', 'pickled', 'big-one']) assert.ok(!library.get(name));
  });

  it('404: an unknown id says Civitai has none', async () => {
    const r = await run('civitai:999999');
    assert.match(r.ok ? '' : r.message, /Civitai has no model version 999999/);
  });

  it('401: a gated model asks for CIVITAI_TOKEN; with it, the token reaches Civitai but never the file host', async () => {
    const gated = civitai.addModel({
      name: 'Members Only',
      gated: true,
      file: loraBytes('lora_i_kohya_unet_te.safetensors'),
    });
    const refused = await run(`civitai:${gated.versionId}`);
    assert.match(refused.ok ? '' : refused.message, /requires a Civitai login .* CIVITAI_TOKEN/);
    assert.ok(!library.get('members-only'));
    const wrongKey = await run(`civitai:${gated.versionId}`, { token: 'not-the-key' });
    assert.match(wrongKey.ok ? '' : wrongKey.message, /refused .* to this bot's CIVITAI_TOKEN/);

    const added = await run(`civitai:${gated.versionId}`, { token: API_KEY });
    assert.ok(added.ok, added.ok ? '' : added.message);
    const download = civitai.apiRequests.filter((r) =>
      r.path.startsWith(`/api/download/models/${gated.versionId}`),
    );
    assert.equal(download.at(-1)?.authorization, `Bearer ${API_KEY}`);
    assert.ok(civitai.fileHostRequests.length > 0);
    assert.ok(
      civitai.fileHostRequests.every((r) => r.authorization === undefined),
      'the token never goes to the file host',
    );
  });

  it('a download whose SHA-256 differs from what Civitai lists is refused and nothing is written', async () => {
    const corrupt = civitai.addModel({
      name: 'Bitflip',
      corrupt: true,
      file: loraBytes('lora_i_kohya_unet_te.safetensors'),
    });
    const r = await run(`civitai:${corrupt.versionId}`);
    assert.match(r.ok ? '' : r.message, /not the one Civitai lists \(SHA-256 .*expected .*nothing was added/);
    assert.ok(!library.get('bitflip'));
    assert.ok(!existsSync(join(root, 'loras', 'bitflip.safetensors')));
    assert.ok(!existsSync(join(root, 'loras', 'bitflip.json')));
  });

  it('a name already taken is refused before downloading', async () => {
    const again = civitai.addModel({ name: 'Barn Owl', file: loraBytes('lora_i_kohya_unet_te.safetensors') });
    const files = civitai.fileHostRequests.length;
    const r = await run(`civitai:${again.versionId}`);
    assert.match(r.ok ? '' : r.message, /a LoRA named 'barn-owl' already exists/);
    assert.equal(civitai.fileHostRequests.length, files);
  });
});
