// npm run build, and the first step of npm start, worker, compose and register: compiles the
// TypeScript into dist/ (tsc -b finds nothing to do when dist/ is current, in well under a second)
// and puts the playground's page files beside its built module.
import { spawnSync } from 'node:child_process';
import { cpSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const typescript = dirname(createRequire(import.meta.url).resolve('typescript/package.json'));
const tsc = spawnSync(process.execPath, [join(typescript, 'bin', 'tsc'), '-b', 'tsconfig.build.json'], {
  cwd: root,
  stdio: 'inherit',
});
if (tsc.status !== 0) {
  console.error('clora-bot did not build: fix the errors above (npm run typecheck lists them too)');
  process.exit(tsc.status ?? 1);
}
const page = join(root, 'dist', 'bot', 'playground', 'public');
rmSync(page, { recursive: true, force: true });
cpSync(join(root, 'bot', 'playground', 'public'), page, { recursive: true });
