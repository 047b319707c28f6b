// The world model on disk: a diffusers folder (so the engine and any SD 1.5 loader open it)
// and, beside it, what a resumed training run needs (optimiser moments, progress, losses).

import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { UNetConfig, VaeConfig } from '../architecture.ts';
import { TensorStore } from '../training/tensor-store.ts';
import { SD15_SCHEDULER_CONFIG } from '../weights/family.ts';

/** Where the project keeps its trained world (committed): the model, its LoRAs, the training state. */
export const WORLD_DIR = fileURLToPath(new URL('../../assets/world', import.meta.url));

export const MODEL_DIR = 'model';
export const TRAINING_DIR = 'training';
export const LORA_DIR = 'loras';

export const UNET_FILE = join('unet', 'diffusion_pytorch_model.safetensors');
export const VAE_FILE = join('vae', 'diffusion_pytorch_model.safetensors');
export const TEXT_ENCODER_FILE = join('text_encoder', 'model.safetensors');

/** Writes through a temporary file and a rename, so a killed run never leaves half a file. */
export function writeAtomically(path: string, data: Uint8Array | string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

/** model_index.json and the UNet's, the VAE's and the scheduler's configs of the world's diffusers folder. */
export function writeModelConfigs(dir: string, unet: UNetConfig, vae: VaeConfig): void {
  writeAtomically(
    join(dir, 'model_index.json'),
    json({
      _class_name: 'StableDiffusionPipeline',
      feature_extractor: [null, null],
      requires_safety_checker: false,
      safety_checker: [null, null],
      scheduler: ['diffusers', 'PNDMScheduler'],
      text_encoder: ['transformers', 'CLIPTextModel'],
      tokenizer: ['transformers', 'CLIPTokenizer'],
      unet: ['diffusers', 'UNet2DConditionModel'],
      vae: ['diffusers', 'AutoencoderKL'],
    }),
  );
  writeAtomically(join(dir, 'unet', 'config.json'), json({ _class_name: 'UNet2DConditionModel', ...unet }));
  writeAtomically(
    join(dir, 'vae', 'config.json'),
    json({
      _class_name: 'AutoencoderKL',
      ...vae,
      down_block_types: vae.block_out_channels.map(() => 'DownEncoderBlock2D'),
      up_block_types: vae.block_out_channels.map(() => 'UpDecoderBlock2D'),
    }),
  );
  writeAtomically(join(dir, 'scheduler', 'scheduler_config.json'), json(SD15_SCHEDULER_CONFIG));
}

/** Whether the folder already holds its frozen text encoder and tokenizer. */
export function hasTextParts(dir: string): boolean {
  return [TEXT_ENCODER_FILE, join('text_encoder', 'config.json'), join('tokenizer', 'vocab.json')].every(
    (f) => existsSync(join(dir, f)),
  );
}

/**
 * Copies a diffusers model's text encoder (stored in half precision: it is the bulk of the
 * world's files, and it stays frozen) and its CLIP tokenizer into the world's folder.
 */
export function copyTextParts(dir: string, from: string): void {
  writeAtomically(
    join(dir, 'text_encoder', 'config.json'),
    readFileSync(join(from, 'text_encoder', 'config.json')),
  );
  const weights = TensorStore.read(join(from, TEXT_ENCODER_FILE));
  writeAtomically(join(dir, TEXT_ENCODER_FILE), weights.encode({ format: 'pt' }, { dtype: 'F16' }));
  mkdirSync(join(dir, 'tokenizer'), { recursive: true });
  for (const f of ['vocab.json', 'merges.txt', 'tokenizer_config.json', 'special_tokens_map.json']) {
    const source = join(from, 'tokenizer', f);
    if (existsSync(source)) copyFileSync(source, join(dir, 'tokenizer', f));
  }
}
