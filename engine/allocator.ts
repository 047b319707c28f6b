// The C allocator's settings for a process that runs the engine. onnxruntime (its own arena
// off, so freed activations can go back to the system) allocates and frees thousands of
// buffers of a few MiB per UNet pass from several threads. glibc's malloc, left to itself,
// raises its mmap threshold to the largest block freed so far (up to 32 MiB) and keeps such
// blocks in per-thread heaps it cannot shrink: measured on SD 1.5 at 512², about 1.3 GiB of
// freed memory stayed in the process (plain generation peaked at 5.9 GiB instead of 4.6).
// A fixed threshold and two arenas return it. Each such block is then a fresh mapping whose
// pages the kernel faults in and zeroes one 4 KiB page at a time, on every pass: on the tiny
// model at 256² (a guided update writes 100 MB score tensors) that was four fifths of the time
// (8 guided updates 24.6 s, of which most in the kernel). glibc's hugetlb tunable asks for
// transparent huge pages on those mappings (madvise; the kernel's default THP mode honours it):
// 2 MiB faults, the same updates in 5.7 s. glibc reads all three from the environment at
// start, so they are set where the process is started: the npm scripts that run the engine do.

/** glibc's malloc settings for an engine process, as environment variables. */
export const ENGINE_MALLOC_ENV: Readonly<Record<string, string>> = Object.freeze({
  MALLOC_ARENA_MAX: '2',
  MALLOC_MMAP_THRESHOLD_: '1048576',
  // glibc ≥ 2.35; older ones ignore a tunable they do not know
  GLIBC_TUNABLES: 'glibc.malloc.hugetlb=1',
});

/** `env` with the engine's malloc settings where the operator set none. */
export function withEngineMallocEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const [k, v] of Object.entries(ENGINE_MALLOC_ENV)) out[k] ??= v;
  return out;
}

/**
 * What to tell an operator whose engine process runs on glibc without the settings (started
 * with `node` directly rather than the npm scripts); undefined where there is nothing to say.
 */
export function mallocAdvice(
  env: NodeJS.ProcessEnv = process.env,
  glibc: boolean = isGlibc(),
): string | undefined {
  if (!glibc) return undefined;
  const missing = Object.keys(ENGINE_MALLOC_ENV).filter((k) => env[k] === undefined);
  if (missing.length === 0) return undefined;
  const settings = Object.entries(ENGINE_MALLOC_ENV)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  return `the engine runs without ${missing.join(' and ')}: glibc's malloc keeps freed activations (about 1.3 GiB more at 512×512) and maps them in 4 KiB pages (up to 5× slower). Start it with ${settings} in the environment, as npm start and npm run worker do`;
}

function isGlibc(): boolean {
  if (process.platform !== 'linux') return false;
  const header = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return header?.header?.glibcVersionRuntime !== undefined;
}
