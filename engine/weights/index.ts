// Weights: safetensors files and SD 1.x checkpoints in diffusers or LDM single-file layout.

export { type Checkpoint, type OpenCheckpointOptions, openCheckpoint } from './checkpoint.ts';
export { SD1_ONLY, SD15_SCHEDULER_CONFIG } from './family.ts';
export {
  encodeSafetensors,
  type SafetensorsDType,
  SafetensorsFile,
  type TensorInfo,
  WeightsError,
  type WeightTransform,
} from './safetensors.ts';
export { MappedWeightSet, type WeightSet } from './weight-set.ts';
