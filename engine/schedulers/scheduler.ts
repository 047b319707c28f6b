// What every sampler looks like to the pipeline: diffusers' scheduler shape (set_timesteps,
// scale_model_input, step) over flat float32 latents.

export type SamplerName = 'ddim' | 'euler' | 'euler_a' | 'dpmpp_2m' | 'dpmpp_2m_karras' | 'pndm';

/** Draws one standard-normal value per latent element; ancestral samplers call it inside step. */
export type NoiseSource = () => Float32Array;

export type ResolvedConfigValue = number | string | boolean | null | number[];

export interface Scheduler {
  readonly name: SamplerName;
  /** The diffusers class this reproduces, e.g. 'DDIMScheduler'. */
  readonly diffusersClass: string;
  /** Every key the diffusers class declares, resolved from the given config and the class defaults. */
  readonly config: Readonly<Record<string, ResolvedConfigValue>>;
  /** The training schedule's cumulative alpha products (float32, index = training timestep). */
  readonly alphasCumprod: Float32Array;
  /** One entry per model call, set by setTimesteps (integers, or float32 values for Euler). */
  readonly timesteps: number[];
  /** Noise levels per call plus the final one (float32), for sigma-parametrised samplers; else null. */
  readonly sigmas: Float32Array | null;
  /** Multiply the unit-variance starting noise by this. */
  readonly initNoiseSigma: number;
  setTimesteps(steps: number): void;
  /** The UNet input for timestep t; samplers that do not scale return x itself. */
  scaleModelInput(x: Float32Array, t: number): Float32Array;
  /** The factor scaleModelInput applies at timestep t (1 where it does not scale): ∂input/∂x. */
  inputScale(t: number): number;
  /** The latent after the model call at timestep t predicted eps (noise) for latent x. */
  step(eps: Float32Array, t: number, x: Float32Array, noise?: NoiseSource): Float32Array;
  /** Forget per-run state (step counter, multistep history) and keep the timesteps. */
  reset(): void;
}
