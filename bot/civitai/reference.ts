// What an admin may type after /lora add to name a LoRA on Civitai: a model-version id
// (`civitai:123456`), a file hash Civitai knows (`civitai:<AutoV2 or SHA-256>`), a civitai.com
// model page (with or without ?modelVersionId=), or an AIR (`urn:air:sd1:lora:civitai:12@34`).

export type CivitaiReference =
  | { kind: 'version'; versionId: number }
  /** a model page or an AIR without a version: the model's newest version */
  | { kind: 'model'; modelId: number; versionId?: number }
  | { kind: 'hash'; hash: string };

export type ReferenceReading =
  | { ok: true; reference: CivitaiReference }
  /** it is meant for Civitai but cannot be read; the message says how to write it */
  | { ok: false; message: string };

const EXAMPLES =
  'write `civitai:<model-version id>`, a civitai.com/models/… link or an AIR like `urn:air:sd1:lora:civitai:<model>@<version>`';

/** Whether the text is meant as a Civitai reference at all (else it is something else, e.g. "add"). */
export function looksLikeCivitai(text: string): boolean {
  const t = text.trim().toLowerCase();
  return (
    t.startsWith('civitai:') ||
    t.startsWith('urn:air:') ||
    /^(https?:\/\/)?(www\.)?civitai\.(com|green)\//.test(t) ||
    /^\d+$/.test(t)
  );
}

export function readCivitaiReference(text: string): ReferenceReading {
  const t = text.trim();
  const fail = (why: string): ReferenceReading => ({ ok: false, message: `${why}: ${EXAMPLES}` });
  if (/^urn:air:/i.test(t)) return readAir(t, fail);
  if (/^(https?:\/\/)?(www\.)?civitai\.(com|green)\//i.test(t)) return readModelUrl(t, fail);
  const bare = /^civitai:/i.test(t) ? t.slice('civitai:'.length).trim() : t;
  // AutoV2 (10 hex digits) and SHA-256 (64) are what A1111's PNG info and Civitai's pages show.
  if (/^[0-9a-f]{64}$/i.test(bare) || (/^[0-9a-f]{10}$/i.test(bare) && /[a-f]/i.test(bare)))
    return { ok: true, reference: { kind: 'hash', hash: bare.toUpperCase() } };
  const id = positiveId(bare);
  if (id !== undefined) return { ok: true, reference: { kind: 'version', versionId: id } };
  return fail(`'${truncate(t)}' is not a Civitai model-version id`);
}

function readAir(t: string, fail: (why: string) => ReferenceReading): ReferenceReading {
  // urn:air:{ecosystem}:{type}:{source}:{id}[@{version}][.{format}]
  const m = /^urn:air:([a-z0-9.]+):([a-z0-9]+):([a-z0-9]+):(\d+)(?:@(\d+))?(?:\.[a-z0-9]+)?$/i.exec(t);
  if (!m) return fail(`'${truncate(t)}' is not an AIR`);
  const [, ecosystem, type, source, model, version] = m;
  if (source.toLowerCase() !== 'civitai') return fail(`the AIR names ${source}, not Civitai`);
  if (ecosystem.toLowerCase() !== 'sd1')
    return { ok: false, message: `the AIR is for ${ecosystem}, and this bot composes SD 1.5 LoRAs only` };
  if (!['lora', 'lycoris', 'locon'].includes(type.toLowerCase()))
    return { ok: false, message: `the AIR names a ${type}, not a LoRA` };
  const modelId = positiveId(model);
  const versionId = version === undefined ? undefined : positiveId(version);
  if (modelId === undefined || (version !== undefined && versionId === undefined))
    return fail(`'${truncate(t)}' has an id out of range`);
  return {
    ok: true,
    reference: versionId === undefined ? { kind: 'model', modelId } : { kind: 'model', modelId, versionId },
  };
}

function readModelUrl(t: string, fail: (why: string) => ReferenceReading): ReferenceReading {
  const href = /^https?:\/\//i.test(t) ? t : `https://${t}`;
  if (!URL.canParse(href)) return fail(`'${truncate(t)}' is not a link`);
  const url = new URL(href);
  const model = /^\/models\/(\d+)(\/|$)/.exec(url.pathname);
  if (!model) return fail('that civitai.com link is not a model page (civitai.com/models/<id>)');
  const modelId = positiveId(model[1]);
  const versionText = url.searchParams.get('modelVersionId');
  const versionId = versionText === null ? undefined : positiveId(versionText);
  if (modelId === undefined || (versionText !== null && versionId === undefined))
    return fail('that civitai.com link has an id out of range');
  return {
    ok: true,
    reference: versionId === undefined ? { kind: 'model', modelId } : { kind: 'model', modelId, versionId },
  };
}

function positiveId(text: string): number | undefined {
  if (!/^\d{1,15}$/.test(text)) return undefined;
  const n = Number(text);
  return n > 0 && Number.isSafeInteger(n) ? n : undefined;
}

function truncate(text: string): string {
  return text.length <= 60 ? text : `${text.slice(0, 59)}…`;
}
