// A LoRA from Civitai into the library: metadata first (refusing anything that is not an SD 1.x
// LoRA in safetensors, or too large, before a byte is downloaded), then the file through
// Civitai's redirect, its SHA-256 checked against what Civitai lists, and the library's own
// check against the model; trigger words, preview picture and licence go into the sidecar.

import { createHash } from 'node:crypto';
import { formatBytes } from '../../commands/loras.ts';
import { UploadTooLarge } from '../library/download.ts';
import type { AddResult, LoraLibrary } from '../library/index.ts';
import { slugify } from '../library/index.ts';
import { IMAGE_EXTENSION, sniffImage } from '../library/sidecar.ts';
import {
  type CivitaiClient,
  CivitaiError,
  type CivitaiFile,
  type CivitaiModel,
  type CivitaiVersion,
} from './client.ts';
import type { CivitaiReference } from './reference.ts';

export interface CivitaiImportOptions {
  /** the name to compose with; default: the model's name on Civitai */
  name?: string;
  replace?: boolean;
  /** the upload cap (LORA_UPLOAD_MAX_MB) */
  maxBytes: number;
}

/** Like the library's AddResult; `source` is the model page the LoRA came from. */
export type CivitaiImportResult =
  | (Extract<AddResult, { ok: true }> & { source: string })
  | { ok: false; message: string };

const PREVIEW_MAX_BYTES = 8 * 1024 * 1024;
// Civitai's names for the model types this bot can compose.
const LORA_TYPES = new Set(['lora', 'locon', 'lycoris']);

export async function importFromCivitai(
  reference: CivitaiReference,
  civitai: CivitaiClient,
  library: Pick<LoraLibrary, 'add' | 'get'>,
  options: CivitaiImportOptions,
): Promise<CivitaiImportResult> {
  const refuse = (message: string): CivitaiImportResult => ({ ok: false, message });
  try {
    const version = await findVersion(reference, civitai);
    if (version.modelId === undefined)
      return refuse('Civitai did not say which model that version belongs to');
    const model = await civitai.model(version.modelId);
    const title = `'${model.name}'${version.name ? ` (${version.name})` : ''}`;
    const type = model.type ?? version.model?.type ?? '';
    if (!LORA_TYPES.has(type.toLowerCase()))
      return refuse(`${title} is a ${type || 'model of unknown type'} on Civitai, not a LoRA`);
    const base = version.baseModel ?? 'an unstated base model';
    if (!isSd1(base))
      return refuse(`${title} is made for ${base}; this bot composes SD 1.5 LoRAs only (Civitai's "SD 1.5")`);
    const file = pickFile(version.files);
    if (!file.ok) return refuse(`${title} ${file.problem}`);
    const announced = (file.file.sizeKB ?? 0) * 1024;
    if (announced > options.maxBytes)
      return refuse(
        `${title} is ${formatBytes(announced)}; LoRAs up to ${formatBytes(options.maxBytes)} can be added (LORA_UPLOAD_MAX_MB)`,
      );
    // A model named only in other scripts ("猫") still needs a slug users can type.
    const name = options.name?.trim() || (slugify(model.name) ? model.name : `civitai-${version.id}`);
    if (!options.replace && library.get(slugify(name)))
      return refuse(`a LoRA named '${slugify(name)}' already exists; pick another name, or replace it`);

    let bytes: Uint8Array;
    try {
      bytes = await civitai.download(file.file.downloadUrl, options.maxBytes);
    } catch (e) {
      if (e instanceof UploadTooLarge) return refuse(`${title} was not added: ${e.message}`);
      throw e;
    }
    const want = file.file.hashes?.SHA256?.toLowerCase();
    const got = createHash('sha256').update(bytes).digest('hex');
    if (want && want !== got)
      return refuse(
        `the file downloaded for ${title} is not the one Civitai lists (SHA-256 ${got.slice(0, 12)}…, expected ${want.slice(0, 12)}…), so nothing was added; try again`,
      );
    const source = pageOf(model.id, version.id);
    const preview = await fetchPreview(version, civitai);
    const result = await library.add(name, bytes, {
      replace: options.replace,
      sidecar: sidecarOf(name, model, version, source, got),
      ...(preview ? { preview } : {}),
    });
    return result.ok ? { ...result, source } : result;
  } catch (e) {
    if (e instanceof CivitaiError) return refuse(e.message);
    throw e;
  }
}

async function findVersion(reference: CivitaiReference, civitai: CivitaiClient): Promise<CivitaiVersion> {
  switch (reference.kind) {
    case 'version':
      return civitai.modelVersion(reference.versionId);
    case 'hash':
      return civitai.modelVersionByHash(reference.hash);
    case 'model': {
      if (reference.versionId !== undefined) {
        const version = await civitai.modelVersion(reference.versionId);
        if (version.modelId !== undefined && version.modelId !== reference.modelId)
          throw new CivitaiError(
            `version ${reference.versionId} belongs to model ${version.modelId}, not ${reference.modelId}; check the link`,
          );
        return version;
      }
      // Civitai lists a model's versions newest first.
      const newest = (await civitai.model(reference.modelId)).modelVersions[0];
      if (!newest) throw new CivitaiError(`model ${reference.modelId} has no published version on Civitai`);
      const version = await civitai.modelVersion(newest.id);
      return { ...version, modelId: version.modelId ?? reference.modelId };
    }
  }
}

/** "SD 1.4", "SD 1.5", "SD 1.5 LCM", "SD 1.5 Hyper": the bases whose LoRAs fit SD 1.5's layers. */
export function isSd1(baseModel: string): boolean {
  return /^sd ?1(\.\d+)?\b/i.test(baseModel.trim());
}

/** The version's LoRA file in safetensors form, the primary one if there are several. */
export function pickFile(
  files: readonly CivitaiFile[],
): { ok: true; file: CivitaiFile } | { ok: false; problem: string } {
  const models = files.filter((f) => (f.type ?? 'Model') === 'Model');
  const safe = models.filter((f) => f.metadata?.format === 'SafeTensor' || /\.safetensors$/i.test(f.name));
  const file = safe.find((f) => f.primary) ?? safe[0];
  if (file) return { ok: true, file };
  if (models.length > 0)
    return {
      ok: false,
      problem:
        'is on Civitai only as a pickled file, which can run code when loaded; ask its creator for a .safetensors version',
    };
  return { ok: false, problem: 'has no model file on Civitai' };
}

function pageOf(modelId: number, versionId: number): string {
  return `https://civitai.com/models/${modelId}?modelVersionId=${versionId}`;
}

/** Civitai's permission flags in one line, as its model page summarises them. */
export function licenceOf(model: CivitaiModel): string | undefined {
  const parts: string[] = [];
  if (model.allowNoCredit === false) parts.push('credit the creator');
  const commercial = model.allowCommercialUse;
  const uses = typeof commercial === 'string' ? [commercial] : (commercial ?? []);
  if (commercial != null)
    parts.push(
      uses.length === 0 || uses.includes('None') ? 'no commercial use' : `commercial use: ${uses.join(', ')}`,
    );
  if (model.allowDerivatives === false) parts.push('no derivatives');
  if (model.allowDifferentLicense === false) parts.push('merges keep these terms');
  return parts.length ? `Civitai licence: ${parts.join('; ')}` : undefined;
}

function sidecarOf(
  name: string,
  model: CivitaiModel,
  version: CivitaiVersion,
  source: string,
  sha256: string,
): Record<string, unknown> {
  const licence = licenceOf(model);
  return {
    name,
    trainedWords: version.trainedWords ?? [],
    description: version.description || model.description || undefined,
    source,
    ...(licence ? { licence } : {}),
    baseModel: version.baseModel,
    tags: model.tags ?? [],
    modelId: model.id,
    modelVersionId: version.id,
    ...(version.air ? { air: version.air } : {}),
    ...(model.creator?.username ? { creator: model.creator.username } : {}),
    sha256,
  };
}

/** The version's first picture, if it downloads and is one; a LoRA is added without one otherwise. */
async function fetchPreview(
  version: CivitaiVersion,
  civitai: CivitaiClient,
): Promise<{ data: Uint8Array; extension: string } | undefined> {
  const image = version.images.find((i) => (i.type ?? 'image') === 'image');
  if (!image) return undefined;
  try {
    const data = await civitai.download(image.url, PREVIEW_MAX_BYTES, 30_000);
    const mime = sniffImage(data);
    return mime ? { data, extension: IMAGE_EXTENSION[mime] } : undefined;
  } catch {
    return undefined;
  }
}
