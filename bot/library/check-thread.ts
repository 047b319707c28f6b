// The LoRA checks' own thread: reading a large LoRA against the model takes a good part of a
// second, and a hostile header (tens of MB of JSON) takes seconds to parse; the bot's event
// loop (chat traffic, acks within 3 s) can spare neither.

import { parentPort, workerData } from 'node:worker_threads';
import type { BaseWeights } from '../../engine/lora/targets.ts';
import { openCheckpoint } from '../../engine/weights/checkpoint.ts';
import { threadData } from '../ts-thread.ts';
import { type CheckOutcome, checkLora } from './check.ts';
import { type HeaderOutcome, readHeaderOutcome } from './header.ts';

export interface CheckThreadData {
  /** the model LoRAs are checked against; without it the thread only reads headers */
  modelPath?: string;
  tokenizerDir?: string;
}

export type CheckRequest = { id: number; kind: 'check' | 'header'; path: string };
export type CheckReply =
  | { id: number; kind: 'check'; outcome: CheckOutcome }
  | { id: number; kind: 'header'; outcome: HeaderOutcome };

const port = parentPort;
if (!port) throw new Error('check-thread.ts runs on a thread of its own (startTsThread)');
const { modelPath, tokenizerDir } = threadData<CheckThreadData>(workerData);

// Opened at the first check, so header reads never wait for the model.
let base: BaseWeights | string | undefined;
function model(): BaseWeights | string {
  if (base !== undefined) return base;
  if (!modelPath) {
    base = 'no model is configured to check it against';
    return base;
  }
  try {
    const ck = openCheckpoint(modelPath, { tokenizerDir });
    base = { unet: ck.unet.weights, textEncoder: ck.textEncoder.weights };
  } catch (e) {
    base = `the model could not be opened (${(e as Error).message})`;
  }
  return base;
}

port.on('message', ({ id, kind, path }: CheckRequest) => {
  if (kind === 'header') {
    port.postMessage({ id, kind, outcome: readHeaderOutcome(path) } satisfies CheckReply);
    return;
  }
  const against = model();
  const outcome: CheckOutcome =
    typeof against === 'string'
      ? { check: { state: 'unusable', reason: `could not be checked (${against})` } }
      : checkLora(path, against);
  port.postMessage({ id, kind, outcome } satisfies CheckReply);
});
