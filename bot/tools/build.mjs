// npm run build, and the first step of npm start, worker, compose and register: compiles the
// TypeScript into dist/ with tsc -b and puts the playground's page files beside its built module.
// When no source is newer than the last build, it returns at once: a start pays for no compiler.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, readdirSync, rmSync, statSync, utimesSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const SOURCES = ['commands', 'bot', 'engine', 'config', 'tools'];
const SETTINGS = ['tsconfig.json', 'tsconfig.build.json', 'package.json', 'package-lock.json'];
/** tsc -b's record of the last build; its time is when dist/ was last known current. */
const stamp = join(root, 'dist', '.tsbuildinfo');

function newestSource() {
  const files = SETTINGS.map((f) => join(root, f));
  for (const dir of SOURCES) {
    for (const f of readdirSync(join(root, dir), { recursive: true })) files.push(join(root, dir, f));
  }
  return Math.max(...files.map((f) => statSync(f).mtimeMs));
}

if (existsSync(stamp) && statSync(stamp).mtimeMs >= newestSource()) process.exit(0);

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
// tsc -b leaves its record alone when a touched file's content did not change.
const now = new Date();
utimesSync(stamp, now, now);
