// npm run proto: regenerates onnx_pb.ts from onnx.proto3, ONNX's own schema (github.com/onnx/onnx,
// onnx/onnx.proto3), with protoc-gen-es driven by buf. To update, replace onnx.proto3 and rerun.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
// buf compiles only files named *.proto: it reads a copy under that name.
const input = mkdtempSync(join(tmpdir(), 'onnx-proto-'));
try {
  copyFileSync(join(here, 'onnx.proto3'), join(input, 'onnx.proto'));
  const buf = spawnSync('buf', ['generate', input, '--template', 'buf.gen.yaml'], {
    cwd: here,
    stdio: 'inherit',
  });
  if (buf.error) throw buf.error;
  process.exitCode = buf.status ?? 1;
} finally {
  rmSync(input, { recursive: true, force: true });
}
