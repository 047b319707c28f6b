// `npm run compose` with the mistakes a user makes: each is refused at once, before the model
// loads, with one message that says what to fix; --help shows the defaults and the limits the
// configuration (MAX_SIZE, MAX_STEPS) sets, as the bot applies them.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { cudaProviderProblem } from '../../bot/cli/checks.ts';
import { fixtureDir, repoRoot } from '../fixtures.ts';

const work = mkdtempSync(join(tmpdir(), 'clora-cli-'));
after(() => rmSync(work, { recursive: true, force: true }));
const fx = fixtureDir();
const model = join(fx, 'model');
const tabby = join(fx, 'loras', 'lora_i_kohya_unet_te.safetensors');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs the CLI with only these settings in its environment; a run past 60 s is killed (and fails). */
function compose(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(
      join(repoRoot, 'node_modules', '.bin', 'tsx'),
      [join(repoRoot, 'bot', 'cli', 'compose.ts'), ...args],
      {
        cwd: work,
        env: { PATH: process.env.PATH ?? '', HOME: work, ...env },
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** Refused before loading the model: exit 2, this message alone, no stack. */
function refused(run: Run, message: RegExp): void {
  assert.equal(run.code, 2, run.stderr);
  assert.doesNotMatch(run.stderr, /loading|^\s+at /m, 'nothing was loaded, no stack trace');
  assert.match(run.stderr, message);
}

describe('npm run compose', { timeout: 300_000 }, () => {
  test('--out naming a file fails at once, before composing', async () => {
    const file = join(work, 'taken.png');
    writeFileSync(file, 'x');
    refused(
      await compose(['--model', model, '--lora', `tabby=${tabby}`, 'cat:<tabby>', '--out', file]),
      /^--out .*taken\.png: is a file/m,
    );
  });

  test('a missing LoRA file is named, not a raw ENOENT', async () => {
    const run = await compose([
      '--model',
      model,
      '--lora',
      `tabby=${join(work, 'nope.safetensors')}`,
      'cat:<tabby>',
    ]);
    refused(run, /^--lora tabby=.*nope\.safetensors: no such file$/m);
    assert.doesNotMatch(run.stderr, /ENOENT/);
  });

  test('a FIFO as --lora is refused rather than read forever', async () => {
    const fifo = join(work, 'pipe.safetensors');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0, 'mkfifo');
    refused(
      await compose([
        '--model',
        model,
        '--lora',
        `tabby=${fifo}`,
        'cat:<tabby>',
        '--out',
        join(work, 'out-fifo'),
      ]),
      /--lora tabby=.*pipe\.safetensors: is a named pipe \(FIFO\), not a LoRA/,
    );
  });

  test('--device cuda without the CUDA provider prints only our message', {
    skip: cudaProviderProblem() ? false : 'this host has the CUDA provider installed',
  }, async () => {
    const run = await compose([
      '--model',
      model,
      '--lora',
      `tabby=${tabby}`,
      'cat:<tabby>',
      '--device',
      'cuda',
      '--out',
      join(work, 'out-cuda'),
    ]);
    refused(run, /^--device cuda: onnxruntime-node's CUDA provider is not installed\. Install it with/);
    assert.ok(!run.stderr.includes('\u001b'), 'no terminal colours');
    assert.doesNotMatch(run.stderr, /onnxruntime::|\[E:/, 'no raw onnxruntime log');
    assert.equal(run.stderr.trimEnd().split('\n').length, 1);
  });

  test('the bot’s size and step limits apply: MAX_SIZE, MAX_STEPS', async () => {
    const base = ['--model', model, '--lora', `tabby=${tabby}`, '--out', join(work, 'out-limits')];
    refused(
      await compose([...base, 'cat:<tabby>', '--size', '256x256'], { MAX_SIZE: '128' }),
      /--size 256x256 won't work: .*between 128 and 128/,
    );
    refused(await compose([...base, 'cat:<tabby>', '--steps', '30'], { MAX_STEPS: '20' }), /--steps/);
    refused(
      await compose([...base, 'cat:<tabby>'], { MAX_SIZE: '1000' }),
      /MAX_SIZE="1000" .*multiple of 64/,
    );
    assert.ok(!existsSync(join(work, 'out-limits', 'image.png')));
  });

  test('--help shows each option’s default and the configured limits', async () => {
    const run = await compose(['--help'], { MAX_SIZE: '768', ENGINE_DEVICE: 'cpu' });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^usage: npm run compose/);
    assert.match(run.stdout, /--steps N +default 50, at most 150/);
    assert.match(
      run.stdout,
      /--size WxH +multiples of 64 from 256 to 768; default the model's own size \(512x512 for SD 1\.5\), at most MAX_SIZE/,
    );
    assert.match(run.stdout, /--out DIR +default out/);
    assert.match(run.stdout, /--device cpu\|cuda +default cpu/);
    assert.match(run.stdout, /--iterations N +default 20/);
  });
});
