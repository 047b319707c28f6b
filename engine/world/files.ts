// The world model on disk: a diffusers folder (so the engine and any SD 1.5 loader open it)
// and, beside it, what a resumed training run needs (optimiser moments, progress, losses).

import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { UNetConfig, VaeConfig } from '../models/config.ts';
import { SD15_SCHEDULER_CONFIG } from '../weights/family.ts';

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

/** model_index.json, the configs, the scheduler and the tokenizer of the world's diffusers folder. */
export function writeModelConfigs(
  dir: string,
  unet: UNetConfig,
  vae: VaeConfig,
  textEncoderConfig: string,
  tokenizerDir: string,
): void {
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
  writeAtomically(join(dir, 'text_encoder', 'config.json'), readFileSync(textEncoderConfig));
  mkdirSync(join(dir, 'tokenizer'), { recursive: true });
  for (const f of ['vocab.json', 'merges.txt', 'tokenizer_config.json', 'special_tokens_map.json']) {
    const from = join(tokenizerDir, f);
    if (existsSync(from)) copyFileSync(from, join(dir, 'tokenizer', f));
  }
}
