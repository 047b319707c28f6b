// "Compare with merge": the merged picture a user asked for, beside the CLoRA picture it was
// asked from (same seed) and that picture's masks, as one sheet under the merge's result.

import { BLOB, type ComposeJobValue } from './jobs.ts';
import type { ComparisonDrawer, TitledPicture } from './ports.ts';
import type { MessageReply } from './reply.ts';

/** How a method is named over its picture. */
export function methodTitle(method: string): string {
  return method === 'clora' ? 'CLoRA' : method;
}

interface FinishedPictures {
  id: string;
  result?: { value: ComposeJobValue; blobs: Record<string, Uint8Array> };
}

/** `reply` with the side-by-side sheet added, when the job it compares with still has its pictures. */
export async function withComparison(
  reply: MessageReply,
  merge: FinishedPictures,
  compared: FinishedPictures | undefined,
  drawComparison: ComparisonDrawer,
): Promise<MessageReply> {
  const own = merge.result?.blobs[BLOB.image];
  const theirs = compared?.result?.blobs;
  if (!own || !theirs?.[BLOB.image] || !compared?.result) return reply;
  const title = methodTitle(compared.result.value.method);
  const pictures: TitledPicture[] = [
    { title: 'merge', bytes: own },
    { title, bytes: theirs[BLOB.image] },
    ...(theirs[BLOB.masks] ? [{ title: `${title}'s masks`, bytes: theirs[BLOB.masks] }] : []),
  ];
  // The sheet is an extra: pictures it cannot read leave the merge's own reply as it is.
  const sheet = await drawComparison(pictures).catch(() => undefined);
  if (!sheet) return reply;
  const seed = merge.result?.value.seed;
  const masks = pictures.length > 2 ? `, with ${title}'s masks` : '';
  return {
    ...reply,
    images: [
      ...(reply.images ?? []),
      {
        data: sheet.bytes,
        filename: `compare-${merge.id}.${sheet.ext}`,
        alt: `merge beside ${title} on the same seed${seed === undefined ? '' : ` (${seed})`}${masks}`,
        mime: sheet.mime,
      },
    ],
  };
}
