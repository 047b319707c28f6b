// What the command-line composer checks before it loads a model and composes for minutes:
// its LoRA files, its output folder and, for --device cuda, that the CUDA provider is there.

import { accessSync, constants, mkdirSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** Why a --lora file cannot be read as a LoRA, or undefined when it is a regular file. */
export function loraFileProblem(path: string): string | undefined {
  let kind: string;
  try {
    const s = statSync(path);
    if (s.isFile()) return undefined;
    // A FIFO or device would block the read, or never end it.
    kind = s.isDirectory()
      ? 'a folder'
      : s.isFIFO()
        ? 'a named pipe (FIFO)'
        : s.isSocket()
          ? 'a socket'
          : 'a device';
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return 'no such file';
    if (code === 'EACCES') return 'not readable (permission denied)';
    return `cannot be read (${code ?? (e as Error).message})`;
  }
  return `is ${kind}, not a LoRA .safetensors file`;
}

/** Creates the output folder if needed; why it cannot hold the results, or undefined. */
export function prepareOutFolder(dir: string): string | undefined {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTDIR') return 'is a file (or lies under one); give a folder';
    return `cannot be created (${code ?? (e as Error).message})`;
  }
  try {
    if (!statSync(dir).isDirectory()) return 'is a file; give a folder';
    accessSync(dir, constants.W_OK);
  } catch (e) {
    return `cannot be written to (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
  }
  return undefined;
}

/**
 * Why onnxruntime-node cannot run on CUDA here, asked before any session: its CUDA provider is
 * a separate download, and a failed session prints onnxruntime's own raw log line first.
 */
export function cudaProviderProblem(): string | undefined {
  const install =
    'Install it with `npm ci --onnxruntime-node-install=cuda12` on a host with CUDA 12 and cuDNN 9, or use --device cpu.';
  if (!((process.platform === 'linux' || process.platform === 'win32') && process.arch === 'x64'))
    return `--device cuda: onnxruntime-node has no CUDA provider for ${process.platform}/${process.arch}; use --device cpu.`;
  const dist = dirname(createRequire(import.meta.url).resolve('onnxruntime-node'));
  const bin = join(dist, '..', 'bin', 'napi-v6', process.platform, process.arch);
  let files: string[];
  try {
    files = readdirSync(bin);
  } catch {
    return `--device cuda: onnxruntime-node's native files are missing (${bin}). ${install}`;
  }
  if (!files.some((f) => /onnxruntime_providers_cuda\.(so|dll)$/.test(f)))
    return `--device cuda: onnxruntime-node's CUDA provider is not installed. ${install}`;
  return undefined;
}
