// The LoRA checks' own thread: reading a large LoRA against the model takes a good part of a
// second, which the bot's event loop (chat traffic, acks within 3 s) cannot spare.

import { parentPort, workerData } from 'node:worker_threads';
import { openCheckpoint } from '../../engine/weights/checkpoint.ts';
import { threadData } from '../worker/ts-thread.ts';
import { type CheckOutcome, checkLora } from './check.ts';

export interface CheckThreadData {
  modelPath: string;
  tokenizerDir?: string;
}

export type CheckRequest = { id: number; path: string };
export type CheckReply = { id: number; outcome: CheckOutcome };

const port = parentPort;
if (!port) throw new Error('check-thread.ts runs as a worker thread');
const { modelPath, tokenizerDir } = threadData<CheckThreadData>(workerData);
const ck = openCheckpoint(modelPath, { tokenizerDir });
const base = { unet: ck.unet.weights, textEncoder: ck.textEncoder.weights };

port.on('message', ({ id, path }: CheckRequest) => {
  const reply: CheckReply = { id, outcome: checkLora(path, base) };
  port.postMessage(reply);
});
