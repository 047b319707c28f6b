// Civitai's public REST API, the few calls a LoRA import needs: a model version by id or by
// file hash, a model by id, and the file download (which redirects to Civitai's file host).
// The token (CIVITAI_TOKEN) goes only to Civitai's own origin, never to the file host.

import { z } from 'zod';
import { DownloadFailed, downloadCapped } from '../library/download.ts';

export const CIVITAI_API_URL = 'https://civitai.com/api/v1/';

const civitaiFile = z.object({
  name: z.string(),
  type: z.string().optional(),
  sizeKB: z.number().optional(),
  metadata: z.object({ format: z.string().nullish() }).partial().nullish(),
  hashes: z.record(z.string(), z.string()).nullish(),
  downloadUrl: z.string(),
  primary: z.boolean().nullish(),
});

const civitaiImage = z.object({ url: z.string(), type: z.string().nullish() });

const civitaiVersion = z.object({
  id: z.number(),
  modelId: z.number().optional(),
  name: z.string().nullish(),
  baseModel: z.string().nullish(),
  trainedWords: z.array(z.string()).nullish(),
  description: z.string().nullish(),
  air: z.string().nullish(),
  model: z.object({ name: z.string().nullish(), type: z.string().nullish() }).nullish(),
  files: z.array(civitaiFile).default([]),
  images: z.array(civitaiImage).default([]),
});

const civitaiModel = z.object({
  id: z.number(),
  name: z.string(),
  type: z.string().nullish(),
  description: z.string().nullish(),
  allowNoCredit: z.boolean().nullish(),
  // Older answers give one string, newer an array.
  allowCommercialUse: z.union([z.string(), z.array(z.string())]).nullish(),
  allowDerivatives: z.boolean().nullish(),
  allowDifferentLicense: z.boolean().nullish(),
  tags: z.array(z.string()).nullish(),
  creator: z.object({ username: z.string().nullish() }).nullish(),
  modelVersions: z.array(z.object({ id: z.number() })).default([]),
});

export type CivitaiFile = z.infer<typeof civitaiFile>;
export type CivitaiVersion = z.infer<typeof civitaiVersion>;
export type CivitaiModel = z.infer<typeof civitaiModel>;

/** A call Civitai refused or that never reached it; `status` is absent for the latter. */
export class CivitaiError extends Error {
  override name = 'CivitaiError';
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

export interface CivitaiOptions {
  /** the API base, e.g. https://civitai.com/api/v1/ (CIVITAI_API_URL) */
  apiUrl?: string;
  /** a Civitai API key, for models whose creators require a login (CIVITAI_TOKEN) */
  token?: string;
  timeoutMs?: number;
}

export class CivitaiClient {
  readonly apiUrl: URL;
  private readonly token: string | undefined;
  private readonly timeoutMs: number;

  constructor(options: CivitaiOptions = {}) {
    const base = options.apiUrl ?? CIVITAI_API_URL;
    this.apiUrl = new URL(base.endsWith('/') ? base : `${base}/`);
    this.token = options.token;
    this.timeoutMs = options.timeoutMs ?? 20_000;
  }

  get hasToken(): boolean {
    return this.token !== undefined;
  }

  modelVersion(id: number): Promise<CivitaiVersion> {
    return this.get(`model-versions/${id}`, civitaiVersion, `model version ${id}`);
  }

  modelVersionByHash(hash: string): Promise<CivitaiVersion> {
    return this.get(
      `model-versions/by-hash/${encodeURIComponent(hash)}`,
      civitaiVersion,
      `file with the hash ${hash}`,
    );
  }

  model(id: number): Promise<CivitaiModel> {
    return this.get(`models/${id}`, civitaiModel, `model ${id}`);
  }

  /** A file's bytes, stopped as soon as they pass `maxBytes`; redirects to the file host are followed. */
  async download(url: string, maxBytes: number, timeoutMs = 10 * 60_000): Promise<Uint8Array> {
    try {
      return await downloadCapped(url, maxBytes, {
        headers: this.headersFor(url),
        timeoutMs,
        source: 'Civitai',
      });
    } catch (e) {
      if (e instanceof DownloadFailed) throw new CivitaiError(this.refusal(e.status, 'file'), e.status);
      throw e;
    }
  }

  /** The token only for Civitai's own origin; fetch drops it itself on a redirect elsewhere. */
  private headersFor(url: string): Record<string, string> {
    const sameOrigin = URL.canParse(url) && new URL(url).origin === this.apiUrl.origin;
    return this.token && sameOrigin ? { Authorization: `Bearer ${this.token}` } : {};
  }

  private async get<S extends z.ZodType>(path: string, schema: S, what: string): Promise<z.output<S>> {
    const url = new URL(path, this.apiUrl).href;
    let response: Response;
    try {
      response = await fetch(url, {
        headers: { Accept: 'application/json', ...this.headersFor(url) },
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (e) {
      throw new CivitaiError(`Civitai cannot be reached (${(e as Error).message}); try again later`);
    }
    if (!response.ok) throw new CivitaiError(this.refusal(response.status, what), response.status);
    const parsed = schema.safeParse(await response.json().catch(() => undefined));
    if (!parsed.success)
      throw new CivitaiError(`Civitai answered something unexpected for the ${what}; try again later`);
    return parsed.data;
  }

  private refusal(status: number, what: string): string {
    if (status === 404) return `Civitai has no ${what} (or it is not published)`;
    if (status === 401 || status === 403)
      return this.token
        ? `Civitai refused the ${what} to this bot's CIVITAI_TOKEN (the creator may limit downloads); check the token's account can download it`
        : `the creator requires a Civitai login for the ${what}; the operator can set CIVITAI_TOKEN to a Civitai API key`;
    if (status === 429) return 'Civitai is rate-limiting this bot; try again in a minute';
    return `Civitai answered ${status} for the ${what}; try again later`;
  }
}
