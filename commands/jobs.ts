// What a composition job carries through the queue, what it reports while it runs and
// what it leaves behind. All JSON; pictures travel as the job's blobs.

import type { ComposeRequest } from './compose/index.ts';

export type ChatPlatform = 'discord' | 'slack' | 'playground' | 'cli';

/** Where a job came from, so a reply can still be delivered after a restart. */
export interface JobOrigin {
  platform: ChatPlatform;
  userId: string;
  userName: string;
  /** the Discord server, Slack workspace or 'playground' */
  scope: string;
  channel: string;
  /** adapter-specific message reference (interaction token, message ts …), JSON */
  message?: { [key: string]: string | number | boolean | null };
}

export type JobParent = { jobId: string; action: 'rerun' | 'seed' | 'merge' | 'tweak' };

export interface ComposeJobData {
  /** with a concrete seed */
  request: ComposeRequest;
  /** the command text as typed (or as formatted for reruns) */
  text: string;
  /** send the mask thumbnails with the image */
  masks: boolean;
  origin: JobOrigin;
  parent?: JobParent;
  /** each bound LoRA's sha256 when the bot knew it, so a worker can tell it has the same file */
  loraHashes?: { [name: string]: string };
  /** LoRA names that matched the library only with case, `_`, `-` and spaces folded */
  renamed?: { typed: string; lora: string }[];
  /** what the result card must say, e.g. which words CLIP's 77-token limit cut */
  notes?: string[];
}

export interface ComposeJobProgress {
  phase: 'text' | 'guidance' | 'denoise' | 'decode';
  step: number;
  steps: number;
  iteration?: number;
  loss?: number;
  etaMs?: number;
  /** a small WebP of the latent, base64 */
  preview?: string;
}

export interface ComposeJobValue {
  seed: number;
  prompts: string[];
  width: number;
  height: number;
  method: string;
  elapsedMs: number;
  timings: { [phase: string]: number };
  /** first and last loss of the latent updates, when there were any */
  loss?: { first: number; last: number; updates: number };
  /** share of the attention grid each LoRA owns, then the background */
  maskShares?: { name: string; share: number }[];
  /** blob names: 'image', and 'masks' / 'maps' when rendered, with their MIME types */
  pictures: { [name: string]: string };
}

/** Blob names the worker writes. */
export const BLOB = { image: 'image', masks: 'masks', maps: 'maps' } as const;
