// npm run proto: regenerates onnx.ts from onnx.proto3, ONNX's own schema (github.com/onnx/onnx,
// onnx/onnx.proto3), with ts-proto driven by buf. To update, replace onnx.proto3 and rerun.
// Usage: node generate.mjs [folder] (default: beside this file)
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const out = process.argv[2] ?? here;
// buf compiles only files named *.proto: it reads a copy under that name.
const input = mkdtempSync(join(tmpdir(), 'onnx-proto-'));
try {
  copyFileSync(join(here, 'onnx.proto3'), join(input, 'onnx.proto'));
  const buf = spawnSync('buf', ['generate', input, '--template', 'buf.gen.yaml', '--output', out], {
    cwd: here,
    stdio: 'inherit',
  });
  if (buf.error) throw buf.error;
  if (buf.status !== 0) process.exit(buf.status ?? 1);
} finally {
  rmSync(input, { recursive: true, force: true });
}
// The generated code derives from the schema, so it carries the schema's licence line.
const output = join(out, 'onnx.ts');
const notice =
  '// From onnx.proto3 (the ONNX Project, SPDX-License-Identifier: Apache-2.0) by npm run proto.\n';
writeFileSync(output, notice + readFileSync(output, 'utf8'));
