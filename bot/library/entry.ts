// One LoRA of the library as users see it: its name, trigger words, what it was made for and
// whether it can be used, assembled from the file's header, its sidecar and its check.

import type { LoraView, TriggerSource } from '../../commands/ports.ts';
import type { LoraRef } from '../../engine/clora/spec.ts';
import { baseModelHint } from '../../engine/lora/metadata.ts';
import type { LoraCheck } from './check.ts';
import { type LoraHeader, metadataTriggers } from './header.ts';
import { plainText, type Sidecar } from './sidecar.ts';

export type { TriggerSource };

/** A LoRA as users see it (commands/ports.ts), with where its file and preview are. */
export interface LoraEntry extends LoraView {
  /** what the engine loads */
  readonly ref: LoraRef;
  readonly modifiedMs: number;
  /** a picture file beside it, or a thumbnail in its metadata */
  readonly preview: { kind: 'file'; path: string } | { kind: 'metadata' } | undefined;
}

/** One LoRA file as the last scan found it. */
export interface ScannedFile {
  path: string;
  file: string;
  stem: string;
  sizeBytes: number;
  modifiedMs: number;
  /** path, size and mtime of the LoRA file: the key of its check */
  stamp: string;
  /** the stamp plus the sidecar's and preview's: any change rebuilds the entry */
  fingerprint: string;
  header?: LoraHeader;
  /** why the file cannot even be listed as a LoRA (unreadable header, pickled file) */
  problem?: string;
  /** `<stem>.json` and `<stem>.civitai.info`, those that exist */
  sidecarPaths: string[];
  /** their fields merged, the .json winning */
  sidecar?: Sidecar;
  /** what is wrong with a sidecar, naming it */
  sidecarProblems: string[];
  previewPath?: string;
}

/** The name a file asks for before clashes are resolved. */
export function displayNameOf(scan: ScannedFile): string {
  return scan.sidecar?.name ?? scan.stem;
}

export function buildEntry(
  scan: ScannedFile,
  name: string,
  check: LoraCheck,
  sha256: string | undefined,
): LoraEntry {
  const sidecar = scan.sidecar ?? {};
  const metadata = scan.header?.metadata ?? {};
  const displayName = displayNameOf(scan);
  const headerTags = scan.header?.tags ?? [];
  const fromMetadata = metadataTriggers(metadata, headerTags);
  const [triggers, triggerSource]: [readonly string[], TriggerSource] = sidecar.triggers?.length
    ? [sidecar.triggers, 'sidecar']
    : fromMetadata.length
      ? [fromMetadata, 'metadata']
      : [[displayName], 'name'];
  const notes = [...scan.sidecarProblems];
  if (check.state === 'ok' && check.unmatched > 0) {
    notes.push(
      `${check.unmatched} of its modules match no layer of the model and are ignored; ` +
        `the other ${check.layers} apply`,
    );
  }
  const description = sidecar.description ?? nonEmpty(metadata['modelspec.description']);
  return {
    name,
    displayName,
    ref: { name, path: scan.path },
    file: scan.file,
    sizeBytes: scan.sizeBytes,
    modifiedMs: scan.modifiedMs,
    triggers,
    triggerSource,
    tags: [...new Set([...headerTags, ...(sidecar.tags ?? [])])],
    rank: check.state === 'ok' ? check.rank : scan.header?.rank,
    sha256,
    check,
    usable: check.state !== 'unusable',
    baseModelClaim: sidecar.baseModel ?? baseModelHint(metadata),
    metadata,
    description: description === undefined ? undefined : plainText(description),
    source: sidecar.source,
    author: nonEmpty(metadata['modelspec.author']),
    licence: sidecar.licence ?? nonEmpty(metadata['modelspec.license']),
    preview: scan.previewPath
      ? { kind: 'file', path: scan.previewPath }
      : metadata['modelspec.thumbnail']?.startsWith('data:image/')
        ? { kind: 'metadata' }
        : undefined,
    notes,
  };
}

function nonEmpty(text: string | undefined): string | undefined {
  const t = text?.trim();
  return t ? t : undefined;
}
