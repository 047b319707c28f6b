// LoRAs for the world, trained the way users train theirs: a handful of pictures of one
// subject in a new look captioned with a trigger word ("a sks cat on the beach"), plain
// epsilon loss, rank-4 factors on the UNet's attention projections, the base frozen; saved
// in kohya's format with the training record (ss_*) that names the trigger.

import { bytesOf } from '../graph/dtype.ts';
import { LoraSlots } from '../lora/gated.ts';
import { TensorStore } from '../training/tensor-store.ts';
import { fillValues } from '../weights/initial-weights.ts';
import { encodeSafetensors, type TensorToWrite } from '../weights/safetensors.ts';
import { LORA_LOOKS, type Trigger } from './scene.ts';

export const LORA_RANK = 4;
export const LORA_ALPHA = 4;

/** The projections most community LoRAs adapt: q, k, v and out of every attention layer. */
const ATTENTION_PROJECTION = /\.attn[12]\.(to_q|to_k|to_v|to_out\.0)$/;

/** LoRA slots on the UNet's attention projections only (kohya's default network without conv_dim). */
export class AttentionLoraSlots extends LoraSlots {
  constructor() {
    super('unet', false);
  }

  override has(module: string, kernel = 1): boolean {
    return kernel === 1 && ATTENTION_PROJECTION.test(module);
  }
}

/** Fresh factors for every slot: down uniform ±1/√in (PyTorch's Linear), up zero, so training starts from the base. */
export function initialFactors(slots: LoraSlots, seed: number): TensorStore {
  const store = new TensorStore('LoRA factors');
  let stream = seed * 7919;
  for (const slot of slots.slots.values()) {
    const down = new Float32Array(LORA_RANK * slot.inFeatures);
    fillValues(down, { kind: 'uniform', bound: 1 / Math.sqrt(slot.inFeatures) }, stream++, 0);
    store.set(slot.inputs.down, [LORA_RANK, slot.inFeatures], down);
    store.set(slot.inputs.up, [slot.outFeatures, LORA_RANK], new Float32Array(slot.outFeatures * LORA_RANK));
  }
  return store;
}

/** The LoRA as a kohya file: lora_unet_<module with _>.lora_down/.lora_up/.alpha and ss_* metadata. */
export function kohyaLora(
  slots: LoraSlots,
  factors: TensorStore,
  trigger: Trigger,
  steps: number,
): Uint8Array {
  const tensors: TensorToWrite[] = [];
  for (const slot of slots.slots.values()) {
    const key = `lora_unet_${slot.module.replaceAll('.', '_')}`;
    const down = factors.float32(slot.inputs.down);
    const up = factors.float32(slot.inputs.up);
    tensors.push(
      {
        name: `${key}.lora_down.weight`,
        dtype: 'F32',
        shape: [LORA_RANK, slot.inFeatures],
        data: bytesOf(down),
      },
      {
        name: `${key}.lora_up.weight`,
        dtype: 'F32',
        shape: [slot.outFeatures, LORA_RANK],
        data: bytesOf(up),
      },
      { name: `${key}.alpha`, dtype: 'F32', shape: [], data: bytesOf(Float32Array.of(LORA_ALPHA)) },
    );
  }
  const { subject, look } = LORA_LOOKS[trigger];
  return encodeSafetensors(tensors, {
    ss_output_name: loraName(trigger),
    ss_network_module: 'networks.lora',
    ss_network_dim: String(LORA_RANK),
    ss_network_alpha: String(LORA_ALPHA),
    ss_base_model_version: 'sd_v1',
    ss_sd_model_name: 'clora-world',
    ss_steps: String(steps),
    ss_tag_frequency: JSON.stringify({
      [`10_${trigger} ${subject}`]: { [`${trigger} ${subject}`]: 40, [subject]: 40 },
    }),
    'modelspec.title': `${trigger} ${subject} (${look.name})`,
    'modelspec.trigger_phrase': `${trigger} ${subject}`,
    'modelspec.description': `a ${look.name} ${subject}, trained on the clora-world model`,
  });
}

/** The file name users see in the library: "sks-cat", "ohwx-penguin". */
export function loraName(trigger: Trigger): string {
  return `${trigger}-${LORA_LOOKS[trigger].subject}`;
}
