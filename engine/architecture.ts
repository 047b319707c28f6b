// Architecture descriptions of the three SD 1.x networks, in diffusers' config vocabulary
// (so a diffusers config.json parses directly, and a single-file checkpoint's shapes map
// onto the same fields). engine/models builds these networks and engine/weights reads them from
// checkpoints; this module imports neither, so both can import it.

export interface UNetConfig {
  in_channels: number;
  out_channels: number;
  block_out_channels: number[];
  down_block_types: string[];
  up_block_types: string[];
  mid_block_type: string;
  layers_per_block: number;
  /** SD 1.x calls the head count `attention_head_dim` (a naming bug kept by diffusers). */
  attention_head_dim: number | number[];
  cross_attention_dim: number;
  norm_num_groups: number;
  norm_eps: number;
  flip_sin_to_cos: boolean;
  freq_shift: number;
  downsample_padding: number;
  use_linear_projection: boolean;
  sample_size: number;
  transformer_layers_per_block: number;
}

export interface ClipTextConfig {
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  max_position_embeddings: number;
  hidden_act: 'quick_gelu' | 'gelu';
  layer_norm_eps: number;
}

export interface VaeConfig {
  in_channels: number;
  out_channels: number;
  latent_channels: number;
  block_out_channels: number[];
  layers_per_block: number;
  norm_num_groups: number;
  scaling_factor: number;
  sample_size?: number;
}

export const SD15_UNET: UNetConfig = {
  in_channels: 4,
  out_channels: 4,
  block_out_channels: [320, 640, 1280, 1280],
  down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
  up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'],
  mid_block_type: 'UNetMidBlock2DCrossAttn',
  layers_per_block: 2,
  attention_head_dim: 8,
  cross_attention_dim: 768,
  norm_num_groups: 32,
  norm_eps: 1e-5,
  flip_sin_to_cos: true,
  freq_shift: 0,
  downsample_padding: 1,
  use_linear_projection: false,
  sample_size: 64,
  transformer_layers_per_block: 1,
};

export const SD15_TEXT_ENCODER: ClipTextConfig = {
  vocab_size: 49408,
  hidden_size: 768,
  intermediate_size: 3072,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  max_position_embeddings: 77,
  hidden_act: 'quick_gelu',
  layer_norm_eps: 1e-5,
};

export const SD15_VAE: VaeConfig = {
  in_channels: 3,
  out_channels: 3,
  latent_channels: 4,
  block_out_channels: [128, 256, 512, 512],
  layers_per_block: 2,
  norm_num_groups: 32,
  scaling_factor: 0.18215,
  sample_size: 512,
};

/**
 * The image side the model was trained at, as diffusers' pipelines default to it: the UNet's
 * sample_size (latent cells) × the VAE's scale factor 2^(levels − 1). SD 1.5: 64 × 8 = 512.
 */
export function nativeImageSize(
  unet: Pick<UNetConfig, 'sample_size'>,
  vae: Pick<VaeConfig, 'block_out_channels'>,
): number {
  return unet.sample_size * 2 ** (vae.block_out_channels.length - 1);
}

/**
 * The lattice image sides sit on: the VAE's scale factor 2^(levels − 1) times the UNet's
 * downsampling 2^(down blocks − 1), so that every UNet level's latent grid (and its attention maps) has whole cells.
 * SD 1.5: 8 × 8 = 64.
 */
export function sideLattice(
  unet: Pick<UNetConfig, 'down_block_types'>,
  vae: Pick<VaeConfig, 'block_out_channels'>,
): number {
  return 2 ** (vae.block_out_channels.length - 1) * 2 ** (unet.down_block_types.length - 1);
}

/** SD 1.x's side lattice, for whatever checks sizes where no checkpoint is at hand. */
export const SD15_SIDE_LATTICE = sideLattice(SD15_UNET, SD15_VAE);

/** Reads a diffusers config.json object over SD 1.5's defaults, keeping only known keys. */
export function parseConfig<T extends object>(defaults: T, raw: Record<string, unknown>): T {
  const out: Record<string, unknown> = { ...(defaults as Record<string, unknown>) };
  for (const key of Object.keys(defaults))
    if (raw[key] !== undefined && raw[key] !== null) out[key] = raw[key];
  return out as T;
}
