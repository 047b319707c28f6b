// Runs at the end of `npm ci`. package.json denies onnxruntime-node's own install script, which
// on Linux x64 fetches the CUDA provider libraries from NuGet on every host; a GPU host asks for
// them with ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci, and then this runs that script, whose failure
// fails the install (a GPU host never ends up quietly CPU-only).
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const wanted = process.env.ONNXRUNTIME_NODE_INSTALL;
if (!wanted || wanted === 'skip') process.exit(0);

const onnxruntime = dirname(createRequire(import.meta.url).resolve('onnxruntime-node/package.json'));
console.log(`onnxruntime-node: installing '${wanted}' (ONNXRUNTIME_NODE_INSTALL)`);
const run = spawnSync(process.execPath, [join(onnxruntime, 'script', 'install.js')], {
  cwd: onnxruntime,
  stdio: 'inherit',
  // As npm runs it for the package itself: the script does nothing when it believes it is its own repository's install.
  env: { ...process.env, npm_package_json: join(onnxruntime, 'package.json') },
});
if (run.status !== 0) {
  console.error(
    `onnxruntime-node could not install '${wanted}' (see above); unset ONNXRUNTIME_NODE_INSTALL for a CPU-only install`,
  );
}
process.exit(run.status ?? 1);
