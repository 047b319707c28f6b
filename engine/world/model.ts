// The world's networks: SD 1.5's topology at the smallest widths that still learn the
// world, so the engine runs them unchanged and a CPU trains them. The UNet keeps its
// cross-attention at a half and a quarter of the latent (the quarter is where CLoRA reads
// its maps) with one head, and drops attention at full latent size, the costliest layer.

import { SD15_UNET, SD15_VAE, type UNetConfig, type VaeConfig } from '../architecture.ts';
import { TensorStore } from '../training/tensor-store.ts';
import { fillValues, type TensorPlan, unetTensors, vaeTensors } from '../weights/initial-weights.ts';
import { unetKeyMap, vaeKeyMap } from '../weights/ldm-layout.ts';

/** How the world is sampled everywhere it is checked and benchmarked. */
export const WORLD_SAMPLING = { sampler: 'ddim', cfg: 7.5, steps: 20 } as const;

/** Latent side: 32×32 latents are 256×256 pictures, and CLoRA's maps are 8×8. */
export const WORLD_LATENT = 32;

export const WORLD_UNET: UNetConfig = {
  ...SD15_UNET,
  block_out_channels: [16, 32, 48, 48],
  down_block_types: ['DownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
  up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'UpBlock2D'],
  layers_per_block: 1,
  attention_head_dim: 1,
  cross_attention_dim: 32,
  // Several channels a group: a group of one or two channels would normalise away absolute values.
  norm_num_groups: 4,
  sample_size: WORLD_LATENT,
};

export const WORLD_VAE: VaeConfig = {
  ...SD15_VAE,
  block_out_channels: [8, 8, 16, 32],
  layers_per_block: 1,
  norm_num_groups: 2,
  sample_size: WORLD_LATENT * 8,
};

/** PyTorch's default initialisation of each tensor, under the diffusers name the builders read. */
function initialise(
  label: string,
  plans: TensorPlan[],
  rename: (ldm: string) => string | undefined,
  seed: number,
) {
  const store = new TensorStore(label);
  plans.forEach((plan, i) => {
    const name = rename(plan.name);
    if (!name) return;
    const values = new Float32Array(plan.shape.reduce((a, b) => a * b, 1));
    fillValues(values, plan.init, seed * 100_003 + i, 0);
    // LDM's 1×1-conv attention projections are Linear layers in diffusers.
    const shape =
      /\.(to_[qkv]|to_out\.0)\.weight$/.test(name) && plan.shape.length === 4
        ? plan.shape.slice(0, 2)
        : plan.shape;
    store.set(name, shape, values);
  });
  return store;
}

export function initialUNet(config: UNetConfig, seed: number): TensorStore {
  const prefix = 'model.diffusion_model.';
  const map = unetKeyMap({
    levels: config.block_out_channels.length,
    layersPerBlock: config.layers_per_block,
    downAttention: config.down_block_types.map((t) => t.startsWith('CrossAttn')),
    upAttention: config.up_block_types.map((t) => t.startsWith('CrossAttn')),
  });
  return initialise(
    'the world UNet',
    unetTensors(config),
    (n) => map.toDiffusers(n.slice(prefix.length))?.name,
    seed,
  );
}

/** The decoder half only: the world's latents are drawn, never encoded. */
export function initialVaeDecoder(config: VaeConfig, seed: number): TensorStore {
  const prefix = 'first_stage_model.';
  const map = vaeKeyMap({
    levels: config.block_out_channels.length,
    layersPerBlock: config.layers_per_block,
  });
  return initialise(
    'the world VAE decoder',
    vaeTensors(config),
    (n) => {
      const name = map.toDiffusers(n.slice(prefix.length))?.name;
      return name && (name.startsWith('decoder.') || name.startsWith('post_quant_conv.')) ? name : undefined;
    },
    seed,
  );
}
