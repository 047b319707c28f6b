// A stand-in for Civitai, speaking its public REST API as documented
// (developer.civitai.com, "Civitai Site Reference"), for the /lora add civitai:… tests:
//   - GET /api/v1/model-versions/:id, /api/v1/model-versions/by-hash/:hash (SHA256 or AutoV2,
//     any case) and /api/v1/models/:id, answering 404 with {"error": …} for what it lacks;
//   - GET /api/download/models/:versionId, Civitai's download endpoint: 401 for a gated model
//     without a valid API key (Authorization: Bearer, or ?token=), else a 307 redirect to a
//     signed URL on a separate file host (another origin, as Civitai's storage is);
//   - the file host itself, serving the file and preview pictures, and recording whether any
//     request carried an Authorization header (a token must never reach it).
// A model may be registered so its file host serves bytes other than those whose hashes the
// API lists, as a corrupted transfer would.

import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StandInModel {
  name: string;
  /** Civitai's model type: LORA, LoCon, Checkpoint, TextualInversion … */
  type?: string;
  /** e.g. "SD 1.5", "SDXL 1.0" */
  baseModel?: string;
  trainedWords?: string[];
  versionName?: string;
  fileName?: string;
  file: Uint8Array;
  /** SafeTensor (default) or PickleTensor */
  format?: 'SafeTensor' | 'PickleTensor';
  /** the creator requires a login to download */
  gated?: boolean;
  /** the file host serves other bytes than the listed hashes describe */
  corrupt?: boolean;
  preview?: Uint8Array;
  tags?: string[];
  allowCommercialUse?: string[];
  allowNoCredit?: boolean;
}

export interface FileHostRequest {
  path: string;
  authorization?: string;
}

interface Stored extends StandInModel {
  modelId: number;
  versionId: number;
  fileId: number;
  sha256: string;
}

export class CivitaiStandIn {
  /** every request to the API origin: method, path with query, and the Authorization header */
  readonly apiRequests: { path: string; authorization?: string }[] = [];
  readonly fileHostRequests: FileHostRequest[] = [];
  private readonly models = new Map<number, Stored>();
  private readonly signatures = new Set<string>();
  private nextId = 4000;

  private constructor(
    private readonly api: Server,
    private readonly files: Server,
    private apiKey: string,
  ) {}

  /** The account's API key changes (revoked, regenerated): the old one gets 401 from now on. */
  rotateKey(next: string): void {
    this.apiKey = next;
  }

  /** `apiKey`: the Civitai API key that unlocks gated models. */
  static async start(options: { apiKey: string }): Promise<CivitaiStandIn> {
    let standIn: CivitaiStandIn | undefined;
    const api = createServer((req, res) => standIn!.serveApi(req, res));
    const files = createServer((req, res) => standIn!.serveFile(req, res));
    standIn = new CivitaiStandIn(api, files, options.apiKey);
    await Promise.all([listen(api), listen(files)]);
    return standIn;
  }

  /** The API base the bot is given as CIVITAI_API_URL. */
  get apiUrl(): string {
    return `${this.origin(this.api)}/api/v1/`;
  }

  get fileHostOrigin(): string {
    return this.origin(this.files);
  }

  /** Registers a model with one version; its ids as Civitai would report them. */
  addModel(model: StandInModel): { modelId: number; versionId: number; sha256: string } {
    const modelId = this.nextId++;
    const versionId = this.nextId * 10 + 7;
    this.nextId++;
    const sha256 = createHash('sha256').update(model.file).digest('hex').toUpperCase();
    this.models.set(modelId, { ...model, modelId, versionId, fileId: versionId + 1, sha256 });
    return { modelId, versionId, sha256 };
  }

  async close(): Promise<void> {
    await Promise.all([this.api, this.files].map((s) => new Promise((r) => s.close(() => r(undefined)))));
  }

  private origin(server: Server): string {
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  private serveApi(req: IncomingMessage, res: ServerResponse): undefined {
    const url = new URL(req.url ?? '/', this.origin(this.api));
    this.apiRequests.push({ path: url.pathname + url.search, authorization: req.headers.authorization });
    if (req.method !== 'GET') return json(res, 405, { error: 'Method not allowed' });
    let m = /^\/api\/v1\/model-versions\/by-hash\/([^/]+)$/.exec(url.pathname);
    if (m) {
      const hash = decodeURIComponent(m[1]).toUpperCase();
      const found = [...this.models.values()].find(
        (s) => s.sha256 === hash || s.sha256.slice(0, 10) === hash,
      );
      return found ? json(res, 200, this.version(found)) : json(res, 404, { error: 'Model not found' });
    }
    m = /^\/api\/v1\/model-versions\/(\d+)$/.exec(url.pathname);
    if (m) {
      const found = this.byVersion(Number(m[1]));
      return found
        ? json(res, 200, this.version(found))
        : json(res, 404, { error: `No model version with id ${m[1]}` });
    }
    m = /^\/api\/v1\/models\/(\d+)$/.exec(url.pathname);
    if (m) {
      const found = this.models.get(Number(m[1]));
      return found
        ? json(res, 200, this.model(found))
        : json(res, 404, { error: `No model with id ${m[1]}` });
    }
    m = /^\/api\/download\/models\/(\d+)$/.exec(url.pathname);
    if (m) {
      const found = this.byVersion(Number(m[1]));
      if (!found) return json(res, 404, { error: 'File not found' });
      const key = req.headers.authorization?.replace(/^Bearer\s+/i, '') ?? url.searchParams.get('token');
      if (found.gated && key !== this.apiKey)
        return json(res, 401, {
          error: 'Unauthorized',
          message: 'The creator of this asset requires you to be logged in to download it',
        });
      const signature = randomBytes(12).toString('hex');
      this.signatures.add(signature);
      const name = encodeURIComponent(found.fileName ?? `${found.name}.safetensors`);
      res.writeHead(307, {
        Location: `${this.fileHostOrigin}/model/${found.fileId}/${name}?X-Amz-Signature=${signature}`,
      });
      res.end();
      return;
    }
    json(res, 404, { error: 'Not found' });
  }

  private serveFile(req: IncomingMessage, res: ServerResponse): undefined {
    const url = new URL(req.url ?? '/', this.fileHostOrigin);
    this.fileHostRequests.push({ path: url.pathname, authorization: req.headers.authorization });
    let m = /^\/model\/(\d+)\/[^/]+$/.exec(url.pathname);
    if (m) {
      const found = [...this.models.values()].find((s) => s.fileId === Number(m![1]));
      const signature = url.searchParams.get('X-Amz-Signature') ?? '';
      // Signed URLs work once, as expiring ones do for a later retry.
      if (!found || !this.signatures.delete(signature)) {
        res.writeHead(403, { 'Content-Type': 'application/xml' });
        res.end('<Error><Code>AccessDenied</Code></Error>');
        return;
      }
      const bytes = Buffer.from(found.file);
      if (found.corrupt) bytes[bytes.length - 1] ^= 0xff;
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': bytes.length });
      res.end(bytes);
      return;
    }
    m = /^\/images\/(\d+)\.(png|jpeg)$/.exec(url.pathname);
    const image = m ? this.models.get(Number(m[1]))?.preview : undefined;
    if (image) {
      res.writeHead(200, { 'Content-Type': `image/${m![2]}`, 'Content-Length': image.byteLength });
      res.end(image);
      return;
    }
    res.writeHead(404).end();
  }

  private byVersion(id: number): Stored | undefined {
    return [...this.models.values()].find((s) => s.versionId === id);
  }

  /** A model version as GET /api/v1/model-versions/:id answers it. */
  private version(s: Stored): Record<string, unknown> {
    const origin = this.origin(this.api);
    const format = s.format ?? 'SafeTensor';
    const ext = format === 'SafeTensor' ? 'safetensors' : 'pt';
    const fileName = s.fileName ?? `${s.name.replace(/\W+/g, '_')}.${ext}`;
    const type = s.type ?? 'LORA';
    return {
      id: s.versionId,
      modelId: s.modelId,
      name: s.versionName ?? 'v1.0',
      createdAt: '2025-06-01T12:00:00.000Z',
      updatedAt: '2025-06-01T12:00:00.000Z',
      status: 'Published',
      availability: 'Public',
      trainedWords: s.trainedWords ?? [],
      baseModel: s.baseModel ?? 'SD 1.5',
      baseModelType: 'Standard',
      description: `<p>${s.name} for <b>SD 1.5</b>.</p>`,
      air: `urn:air:${(s.baseModel ?? 'SD 1.5').startsWith('SDXL') ? 'sdxl' : 'sd1'}:${type.toLowerCase()}:civitai:${s.modelId}@${s.versionId}`,
      stats: { downloadCount: 12, thumbsUpCount: 3 },
      model: { name: s.name, type, nsfw: false, poi: false },
      files: [
        {
          id: s.fileId,
          name: fileName,
          type: 'Model',
          sizeKB: s.file.byteLength / 1024,
          metadata: { format, size: null, fp: null },
          pickleScanResult: 'Success',
          virusScanResult: 'Success',
          hashes: { AutoV2: s.sha256.slice(0, 10), SHA256: s.sha256 },
          downloadUrl: `${origin}/api/download/models/${s.versionId}?type=Model&format=${format}`,
          primary: true,
        },
      ],
      images: s.preview
        ? [{ url: `${this.fileHostOrigin}/images/${s.modelId}.png`, nsfwLevel: 1, type: 'image' }]
        : [],
      downloadUrl: `${origin}/api/download/models/${s.versionId}`,
    };
  }

  /** A model as GET /api/v1/models/:id answers it, its versions newest first. */
  private model(s: Stored): Record<string, unknown> {
    const { modelId: _model, ...version } = this.version(s);
    return {
      id: s.modelId,
      name: s.name,
      description: `<p>A test model: ${s.name}</p>`,
      type: s.type ?? 'LORA',
      poi: false,
      nsfw: false,
      allowNoCredit: s.allowNoCredit ?? true,
      allowCommercialUse: s.allowCommercialUse ?? ['Image', 'RentCivit'],
      allowDerivatives: true,
      allowDifferentLicense: false,
      stats: { downloadCount: 12 },
      creator: { username: 'standin-creator' },
      tags: s.tags ?? ['character'],
      modelVersions: [version],
    };
  }
}

function json(res: ServerResponse, status: number, body: unknown): undefined {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8' });
  res.end(text);
  return undefined;
}

function listen(server: Server): Promise<void> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
}
