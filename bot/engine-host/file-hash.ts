// SHA-256 of model files for the recipes pictures carry: checkpoints are gigabytes, so each file is read once
// (streamed, on the engine's thread, never the bot's) and remembered until its size or time changes.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';

const known = new Map<string, { stamp: string; sha256: Promise<string> }>();

function streamSha256(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path, { highWaterMark: 4 << 20 })
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}

/** The file's SHA-256 (hex), computed once per file version. */
export async function cachedSha256(path: string): Promise<string> {
  const info = await stat(path);
  const stamp = `${info.size}:${info.mtimeMs}`;
  const hit = known.get(path);
  if (hit && hit.stamp === stamp) return hit.sha256;
  const sha256 = streamSha256(path);
  known.set(path, { stamp, sha256 });
  sha256.catch(() => known.delete(path));
  return sha256;
}
