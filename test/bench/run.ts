// Runs the benchmarks: every test/bench/*.bench.ts exports `run(report)`.
// Usage: npm run bench [-- <filter>...]   (a filter matches the benchmark's file name)
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { printReport, type Report } from './harness.ts';

const dir = fileURLToPath(new URL('.', import.meta.url));
const filters = process.argv.slice(2);
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => filters.length === 0 || filters.some((q) => f.includes(q)))
  .sort();
if (files.length === 0) {
  console.error(
    `no benchmark matches ${filters.join(' ')}; available: ${readdirSync(dir)
      .filter((f) => f.endsWith('.bench.ts'))
      .join(', ')}`,
  );
  process.exit(1);
}
let failed = false;
for (const file of files) {
  const mod = (await import(new URL(file, import.meta.url).href)) as {
    run: (report: Report) => Promise<void>;
  };
  try {
    await mod.run(printReport);
  } catch (e) {
    failed = true;
    console.error(`${file}: ${(e as Error).stack ?? e}`);
  }
}
process.exit(failed ? 1 : 0);
