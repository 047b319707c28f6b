// npm run reference -- <fixture-dir> [case id or kind …] [--long-chain-factor N]
// Runs a reference fixture's cases and prints, per output: case, max abs error, max rel
// error, tolerance, PASS/FAIL; then `N passed, N failed`. Exits non-zero on any failure,
// including a case kind it cannot run.
import { runFixture } from './cases.ts';
import type { Check } from './compare.ts';

const args = process.argv.slice(2);
const factorAt = args.indexOf('--long-chain-factor');
const longChainFactor = factorAt >= 0 ? Number(args.splice(factorAt, 2)[1]) : 1;
const [dir, ...only] = args;
if (!dir || !(longChainFactor >= 1)) {
  console.error(
    'usage: npm run reference -- <fixture-dir> [case id or kind …] [--long-chain-factor N (1–10)]',
  );
  process.exit(2);
}

const num = (v: number) => (Number.isFinite(v) ? v.toExponential(2) : String(v));
const line = (k: Check) =>
  `${k.pass ? 'PASS' : 'FAIL'}  ${k.case.padEnd(22)} ${k.output.padEnd(56)} abs ${num(k.maxAbs).padStart(9)}  rel ${num(k.maxRel).padStart(9)}  tol ${k.exact ? 'exact'.padStart(9) : num(k.tolerance).padStart(9)}${k.note ? `  (${k.note})` : ''}`;

try {
  const checks = await runFixture(dir, {
    only,
    longChainFactor,
    onCase: (_id, cs) => {
      for (const k of cs) console.log(line(k));
    },
  });
  const failed = checks.filter((k) => !k.pass).length;
  console.log(`${checks.length - failed} passed, ${failed} failed`);
  process.exit(failed === 0 && checks.length > 0 ? 0 : 1);
} catch (e) {
  console.error((e as Error).message);
  process.exit(2);
}
