// Downloading an uploaded LoRA from a chat platform: size-capped while streaming, whatever
// size the server announced, with a time limit.

import { formatBytes } from '../../commands/loras.ts';

/** The file is larger than the upload cap; the message says by how much, for the user. */
export class UploadTooLarge extends Error {
  override name = 'UploadTooLarge';
}

/** The server answered with an error status; `status` tells a refusal (401) from a missing file (404). */
export class DownloadFailed extends Error {
  override name = 'DownloadFailed';
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export async function downloadCapped(
  url: string,
  maxBytes: number,
  options: { headers?: Record<string, string>; timeoutMs?: number; source?: string } = {},
): Promise<Uint8Array> {
  const response = await fetch(url, {
    headers: options.headers,
    signal: AbortSignal.timeout(options.timeoutMs ?? 120_000),
  });
  if (!response.ok || !response.body) {
    throw new DownloadFailed(
      `${options.source ?? 'the download'} answered ${response.status}`,
      response.status,
    );
  }
  const announced = Number(response.headers.get('content-length'));
  if (Number.isFinite(announced) && announced > maxBytes) {
    throw new UploadTooLarge(`it is ${formatBytes(announced)}, over ${formatBytes(maxBytes)}`);
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of response.body) {
    total += chunk.byteLength;
    if (total > maxBytes) throw new UploadTooLarge(`it is over ${formatBytes(maxBytes)}`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
