// The schedulers against diffusers' own traces (fixture case scheduler_traces) and, for the
// ancestral samplers the fixture lacks, against the exact marginals of a point-mass data set.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { EulerDiscreteScheduler } from '../../engine/schedulers/euler.ts';
import {
  alphasCumprodFor,
  createScheduler,
  SAMPLERS,
  type SamplerName,
  type Scheduler,
  SchedulerConfigError,
  stepIndicesForFraction,
} from '../../engine/schedulers/index.ts';
import { gaussianNoise, stepNoise } from '../../engine/schedulers/noise.ts';
import { fixtureDir } from '../fixtures.ts';

// --- safetensors, read by hand: u64 LE header length, JSON header, raw little-endian data ---

type StoredTensor = { shape: number[]; values: number[] };

function readSafetensors(path: string): Map<string, StoredTensor> {
  const bytes = readFileSync(path);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8')) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const tensors = new Map<string, StoredTensor>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [begin, end] = entry.data_offsets;
    const view = new DataView(bytes.buffer, bytes.byteOffset + 8 + headerLength + begin, end - begin);
    const values: number[] = [];
    if (entry.dtype === 'F32')
      for (let i = 0; i < view.byteLength; i += 4) values.push(view.getFloat32(i, true));
    else if (entry.dtype === 'I64')
      for (let i = 0; i < view.byteLength; i += 8) values.push(Number(view.getBigInt64(i, true)));
    else throw new Error(`unexpected dtype ${entry.dtype} for ${name}`);
    tensors.set(name, { shape: entry.shape, values });
  }
  return tensors;
}

interface TraceRun {
  name: string;
  num_inference_steps: number;
  scheduler_class: string;
  config: Record<string, unknown>;
  init_noise_sigma: number;
  timesteps: number[];
  n_model_calls: number;
  keys: { sigmas: string | null };
}

interface TraceCase {
  id: string;
  fake_model: { a: number; b: number };
  runs: TraceRun[];
  tolerance: Record<string, { max_abs_f32_vs_f64: number }>;
}

const dir = fixtureDir();
const traces = (
  JSON.parse(readFileSync(join(dir, 'reference', 'cases.json'), 'utf8')) as { cases: TraceCase[] }
).cases.find((c) => c.id === 'scheduler_traces')!;
const stored = readSafetensors(join(dir, 'reference', 'schedulers.safetensors'));
const modelConfig = JSON.parse(
  readFileSync(join(dir, 'model', 'scheduler', 'scheduler_config.json'), 'utf8'),
);
const tensor = (key: string) => stored.get(key) ?? assert.fail(`fixture lacks ${key}`);

const samplerOfRun: Record<string, SamplerName> = {
  ddim: 'ddim',
  euler: 'euler',
  dpmpp2m: 'dpmpp_2m',
  dpmpp2m_karras: 'dpmpp_2m_karras',
  pndm: 'pndm',
};

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

/** Runs the fixture's fake model eps = a*x_in + b*sin(i) through a scheduler, recording every x_in and latent. */
function runFakeModel(scheduler: Scheduler, initialNoise: Float32Array, a: number, b: number) {
  let x: Float32Array = initialNoise.map((v) => v * scheduler.initNoiseSigma);
  const latents = [x];
  const inputs: Float32Array[] = [];
  scheduler.timesteps.forEach((t, i) => {
    const xIn = scheduler.scaleModelInput(x, t);
    inputs.push(xIn);
    const eps = xIn.map((v) => a * v + b * Math.sin(i));
    x = scheduler.step(eps, t, x);
    latents.push(x);
  });
  return { latents, inputs };
}

describe('schedulers reproduce diffusers 0.27 (fixture scheduler_traces)', () => {
  test('alphas_cumprod is bit-identical to torch float32', () => {
    const expected = tensor('alphas_cumprod').values;
    assert.deepEqual(Array.from(alphasCumprodFor(modelConfig)), expected);
    for (const name of SAMPLERS)
      assert.deepEqual(Array.from(createScheduler(name, modelConfig).alphasCumprod), expected);
  });

  const initialNoise = Float32Array.from(tensor('initial_noise').values);
  for (const run of traces.runs) {
    const steps = run.num_inference_steps;
    const prefix = `${run.name}.${steps}`;
    test(`${run.scheduler_class} (${run.name}), ${steps} steps`, (t) => {
      const scheduler = createScheduler(samplerOfRun[run.name], modelConfig);
      assert.equal(scheduler.diffusersClass, run.scheduler_class);
      for (const [key, value] of Object.entries(scheduler.config)) {
        const expected = run.config[key] === '-Infinity' ? Number.NEGATIVE_INFINITY : run.config[key];
        assert.deepEqual(value, expected, `resolved config ${key}`);
      }

      scheduler.setTimesteps(steps);
      assert.equal(scheduler.timesteps.length, run.n_model_calls);
      assert.deepEqual(scheduler.timesteps, run.timesteps);
      assert.equal(scheduler.initNoiseSigma, run.init_noise_sigma);
      if (run.keys.sigmas === null) assert.equal(scheduler.sigmas, null);
      else assert.deepEqual(Array.from(scheduler.sigmas ?? []), tensor(`${prefix}.sigmas`).values);

      const { latents, inputs } = runFakeModel(
        scheduler,
        initialNoise,
        traces.fake_model.a,
        traces.fake_model.b,
      );
      const size = initialNoise.length;
      const expectedLatents = tensor(`${prefix}.latents`).values;
      const expectedInputs = tensor(`${prefix}.scaled_model_inputs`).values;
      const latentError = Math.max(
        ...latents.map((x, k) => maxAbsDiff(x, expectedLatents.slice(k * size, (k + 1) * size))),
      );
      const inputError = Math.max(
        ...inputs.map((x, k) => maxAbsDiff(x, expectedInputs.slice(k * size, (k + 1) * size))),
      );
      // cases.json's suggested atol (10x the float32 deviation), without the README's extra slack for 50 steps
      const tolerance = 10 * traces.tolerance[`${prefix}.latents`].max_abs_f32_vs_f64;
      t.diagnostic(
        `max |latent error| ${latentError.toExponential(2)}, max |input error| ${inputError.toExponential(2)}, tolerance ${tolerance.toExponential(2)}`,
      );
      assert.ok(latentError <= tolerance, `latents off by ${latentError} > ${tolerance}`);
      assert.ok(inputError <= tolerance, `scaled inputs off by ${inputError} > ${tolerance}`);
    });
  }
});

const runOf = (name: string, steps: number) =>
  traces.runs.find((r) => r.name === name && r.num_inference_steps === steps) ??
  assert.fail(`no run ${name}`);

/** Largest |actual - expected| relative to max(1, |expected|). */
function maxRelativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < actual.length; i++) {
    worst = Math.max(worst, Math.abs(actual[i] - expected[i]) / Math.max(1, Math.abs(expected[i])));
  }
  return worst;
}

function std(values: ArrayLike<number>): number {
  let sum = 0;
  let squares = 0;
  for (let i = 0; i < values.length; i++) {
    sum += values[i];
    squares += values[i] ** 2;
  }
  const m = sum / values.length;
  return Math.sqrt(squares / values.length - m * m);
}

// With data that is a point mass at mu, the ideal model is known in closed form, so every ancestral
// step must equal k-diffusion's / DDIM's formula with the very noise it was given.
describe('ancestral samplers on a point-mass data set', () => {
  const n = 1 << 14;
  const mu = 0.7;
  const seed = 31337;

  test('Euler ancestral: x -> mu + (sigma_down/sigma)(x - mu) + sigma_up z, marginals stay N(mu, sigma^2)', () => {
    const scheduler = createScheduler('euler_a', modelConfig);
    scheduler.setTimesteps(20);
    const euler = runOf('euler', 20);
    assert.deepEqual(scheduler.timesteps, euler.timesteps);
    assert.deepEqual(Array.from(scheduler.sigmas ?? []), tensor('euler.20.sigmas').values);
    assert.equal(scheduler.initNoiseSigma, euler.init_noise_sigma);
    const sigmas = scheduler.sigmas!;
    let x: Float32Array = gaussianNoise(seed, n, 0).map((z) => mu + z * scheduler.initNoiseSigma);
    scheduler.timesteps.forEach((t, k) => {
      const [from, to] = [sigmas[k], sigmas[k + 1]];
      const xIn = scheduler.scaleModelInput(x, t);
      const eps = xIn.map((v) => (v * Math.sqrt(from * from + 1) - mu) / from);
      const next = scheduler.step(eps, t, x, stepNoise(seed, n, k));
      // k-diffusion's get_ancestral_step(from, to, eta=1)
      const up = Math.sqrt((to * to * (from * from - to * to)) / (from * from));
      const down = Math.sqrt(to * to - up * up);
      const z = gaussianNoise(seed, n, k + 1);
      const expected = x.map((v, i) => mu + (down / from) * (v - mu) + up * z[i]);
      assert.ok(maxRelativeError(next, expected) < 1e-5, `step ${k} differs from the ancestral update`);
      const spread = std(next.map((v) => v - mu));
      assert.ok(Math.abs(spread - to) <= 0.05 * to + 1e-6, `step ${k}: std ${spread} vs sigma ${to}`);
      x = next;
    });
    assert.ok(
      x.every((v) => Math.abs(v - mu) < 1e-5),
      'ends on the data point',
    );
  });

  test('Euler ancestral needs a noise source and is reproducible from the seed', () => {
    const run = (noiseSeed: number) => {
      const scheduler = createScheduler('euler_a', modelConfig);
      scheduler.setTimesteps(8);
      let x: Float32Array = gaussianNoise(noiseSeed, 64).map((v) => v * scheduler.initNoiseSigma);
      scheduler.timesteps.forEach((t, k) => {
        const eps = scheduler.scaleModelInput(x, t).map((v) => 0.1 * v);
        x = scheduler.step(eps, t, x, stepNoise(noiseSeed, 64, k));
      });
      return x;
    };
    assert.deepEqual(run(5), run(5));
    assert.notDeepEqual(run(5), run(6));
    const scheduler = createScheduler('euler_a', modelConfig);
    scheduler.setTimesteps(8);
    const x = new Float32Array(4);
    assert.throws(() => scheduler.step(x, scheduler.timesteps[0], x), /noise source/);
  });

  for (const eta of [0.5, 1]) {
    test(`DDIM eta ${eta}: x0 is recovered exactly and fresh noise keeps Var = 1 - alpha_bar`, () => {
      const scheduler = createScheduler('ddim', modelConfig, { eta });
      scheduler.setTimesteps(10);
      const ac = scheduler.alphasCumprod;
      let x: Float32Array = gaussianNoise(seed, n, 0).map(
        (z) => Math.sqrt(ac[scheduler.timesteps[0]]) * mu + Math.sqrt(1 - ac[scheduler.timesteps[0]]) * z,
      );
      scheduler.timesteps.forEach((t, k) => {
        const prevT = t - 100;
        const [aT, aPrev] = [ac[t], prevT >= 0 ? ac[prevT] : ac[0]];
        const eps = x.map((v) => (v - Math.sqrt(aT) * mu) / Math.sqrt(1 - aT));
        const next = scheduler.step(eps, t, x, stepNoise(seed, n, k));
        // DDIM eq. 12 with sigma_t(eta) of eq. 16
        const sigma = eta * Math.sqrt((1 - aPrev) / (1 - aT)) * Math.sqrt(1 - aT / aPrev);
        const z = gaussianNoise(seed, n, k + 1);
        const expected = eps.map(
          (e, i) => Math.sqrt(aPrev) * mu + Math.sqrt(1 - aPrev - sigma * sigma) * e + sigma * z[i],
        );
        assert.ok(maxRelativeError(next, expected) < 1e-5, `step ${k} differs from DDIM`);
        const spread = std(next.map((v) => v - Math.sqrt(aPrev) * mu));
        assert.ok(
          Math.abs(spread - Math.sqrt(1 - aPrev)) <= 0.05 * Math.sqrt(1 - aPrev),
          `step ${k}: std ${spread}`,
        );
        x = next;
      });
    });
  }

  test('DDIM with eta > 0 needs a noise source; eta 0 is the default and draws none', () => {
    const withEta = createScheduler('ddim', modelConfig, { eta: 0.3 });
    withEta.setTimesteps(5);
    const x = gaussianNoise(1, 16);
    assert.throws(() => withEta.step(x, withEta.timesteps[0], x), /noise source/);
    const plain = createScheduler('ddim', modelConfig);
    const explicit = createScheduler('ddim', modelConfig, { eta: 0 });
    plain.setTimesteps(5);
    explicit.setTimesteps(5);
    const noNoise = () => assert.fail('eta 0 must not draw noise');
    assert.deepEqual(plain.step(x, 801, x), explicit.step(x, 801, x, noNoise));
  });
});

describe('scheduler configuration and state', () => {
  test('Euler with Karras sigmas matches the DPM++ Karras schedule of the fixture', () => {
    for (const steps of [20, 50]) {
      const euler = new EulerDiscreteScheduler({ ...modelConfig, use_karras_sigmas: true });
      euler.setTimesteps(steps);
      const dpm = tensor(`dpmpp2m_karras.${steps}.sigmas`).values;
      assert.deepEqual(Array.from(euler.sigmas.subarray(0, steps)), dpm.slice(0, steps));
      assert.equal(euler.sigmas[steps], 0);
      assert.deepEqual(euler.timesteps.map(Math.round), runOf('dpmpp2m_karras', steps).timesteps);
    }
  });

  test('missing keys take the class defaults and unknown keys are ignored', () => {
    const ddim = createScheduler('ddim', { some_future_option: 3, _class_name: 'PNDMScheduler' });
    assert.equal(ddim.config.beta_schedule, 'linear');
    assert.equal(ddim.config.clip_sample, true);
    assert.equal(ddim.config.set_alpha_to_one, true);
    assert.equal(ddim.config.steps_offset, 0);
    assert.equal(ddim.alphasCumprod[0], Math.fround(1 - 0.0001));
    assert.ok(!('some_future_option' in ddim.config));
    ddim.setTimesteps(10);
    assert.deepEqual(ddim.timesteps, [900, 800, 700, 600, 500, 400, 300, 200, 100, 0]);
    // clip_sample (the DDIM default) clamps the predicted x0 to [-1, 1] before the DDIM update
    const x = new Float32Array([0.5, -0.5, 0.2]);
    const eps = new Float32Array([-30, 30, 0.1]);
    const [aT, aPrev] = [ddim.alphasCumprod[900], ddim.alphasCumprod[800]];
    const expected = Array.from(x, (v, i) => {
      const x0 = Math.min(1, Math.max(-1, (v - Math.sqrt(1 - aT) * eps[i]) / Math.sqrt(aT)));
      return Math.sqrt(aPrev) * x0 + Math.sqrt(1 - aPrev) * eps[i];
    });
    assert.ok(maxRelativeError(ddim.step(eps, 900, x), expected) < 1e-6);
  });

  test('options this port does not implement are errors a user can act on', () => {
    const cases: [SamplerName, Record<string, unknown>, RegExp][] = [
      ['ddim', { prediction_type: 'v_prediction' }, /prediction_type 'v_prediction'/],
      ['euler', { interpolation_type: 'log_linear' }, /interpolation_type/],
      ['dpmpp_2m', { solver_type: 'heun' }, /solver_type 'heun'/],
      ['pndm', { skip_prk_steps: false }, /Runge-Kutta/],
      ['euler_a', { beta_schedule: 'squaredcos_cap_v2' }, /beta_schedule 'squaredcos_cap_v2'/],
      ['ddim', { steps_offset: '1' }, /steps_offset/],
    ];
    for (const [name, override, message] of cases) {
      assert.throws(
        () => createScheduler(name, { ...modelConfig, ...override }),
        (error: unknown) => {
          return error instanceof SchedulerConfigError && message.test(error.message);
        },
      );
    }
    assert.throws(() => createScheduler('euler', modelConfig, { eta: 1 }), SchedulerConfigError);
    assert.throws(() =>
      createScheduler('ddim', modelConfig).step(new Float32Array(1), 1, new Float32Array(1)),
    );
  });

  test('reset forgets the multistep history so a second run repeats the first', () => {
    const noise = Float32Array.from(tensor('initial_noise').values);
    for (const name of SAMPLERS) {
      const scheduler = createScheduler(name, modelConfig);
      scheduler.setTimesteps(12);
      const source = (k: number) => stepNoise(3, noise.length, k);
      const run = () => {
        let x: Float32Array = noise.map((v) => v * scheduler.initNoiseSigma);
        scheduler.timesteps.forEach((t, k) => {
          const eps = scheduler.scaleModelInput(x, t).map((v) => 0.1 * v + 0.05 * Math.sin(k));
          x = scheduler.step(eps, t, x, source(k));
        });
        return x;
      };
      const first = run();
      if (name !== 'ddim') {
        const last = scheduler.timesteps.at(-1)!;
        assert.throws(() => scheduler.step(noise, last, noise, source(99)), /reset/, `${name} past the end`);
      }
      scheduler.reset();
      assert.deepEqual(run(), first, `${name} after reset`);
      scheduler.setTimesteps(12);
      assert.deepEqual(run(), first, `${name} after setTimesteps`);
    }
  });

  test('the input scale is the factor scaleModelInput applies, at every step', () => {
    const x = Float32Array.from(gaussianNoise(3, 64));
    for (const name of SAMPLERS) {
      const scheduler = createScheduler(name, modelConfig);
      scheduler.setTimesteps(8);
      scheduler.timesteps.forEach((t, k) => {
        const scaled = scheduler.scaleModelInput(x, t);
        const scale = scheduler.inputScale(t);
        for (let i = 0; i < x.length; i++)
          assert.ok(Math.abs(scaled[i] - x[i] * scale) <= 1e-6 * Math.abs(x[i]), `${name} at t = ${t}`);
        scheduler.step(scaled, t, x, () => Float32Array.from(gaussianNoise(k, x.length)));
      });
    }
  });

  test('step fractions map to leading model-call indices', () => {
    assert.deepEqual(stepIndicesForFraction(10, 0.5), [0, 1, 2, 3, 4]);
    assert.deepEqual(stepIndicesForFraction(21, 0.25), [0, 1, 2, 3, 4]);
    assert.deepEqual(stepIndicesForFraction(7, 0), []);
    assert.equal(stepIndicesForFraction(7, 1).length, 7);
    assert.throws(() => stepIndicesForFraction(10, 1.5), RangeError);
  });
});
