// What `npm ci` promises: the Node versions package.json admits are ones every dependency runs
// on, every install script has a reviewed decision, and onnxruntime-node's CUDA download runs
// only when ONNXRUNTIME_NODE_INSTALL asks for it, failing the install when it cannot finish.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import semver from 'semver';
import { repoRoot } from '../fixtures.ts';

interface LockedPackage {
  version?: string;
  hasInstallScript?: boolean;
  engines?: { node?: string };
}

const manifest = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
  engines: { node: string };
  allowScripts?: Record<string, boolean>;
};
const lockfile = JSON.parse(readFileSync(join(repoRoot, 'package-lock.json'), 'utf8')) as {
  packages: Record<string, LockedPackage>;
};
/** Every installed package (the root's entry, '', is the project itself). */
const locked = Object.entries(lockfile.packages)
  .filter(([path]) => path !== '')
  .map(([path, p]) => ({ name: path.split('node_modules/').at(-1)!, ...p }));

test("the oldest Node package.json admits satisfies every locked package's engines", () => {
  const oldest = semver.minVersion(manifest.engines.node)!.version;
  const refused = locked
    .filter((p) => p.engines?.node && !semver.satisfies(oldest, p.engines.node))
    .map((p) => `${p.name}@${p.version} needs node ${p.engines!.node}`);
  assert.deepEqual(refused, [], `engines.node (${manifest.engines.node}) admits ${oldest}`);
});

test('every package with an install script is allowed or denied in allowScripts', () => {
  const decided = Object.keys(manifest.allowScripts ?? {}).map((key) => key.replace(/(.)@.*$/, '$1'));
  const undecided = locked.filter((p) => p.hasInstallScript && !decided.includes(p.name)).map((p) => p.name);
  assert.deepEqual(undecided, [], 'run `npm install-scripts ls`, review, then approve or deny');
  assert.equal(manifest.allowScripts?.['onnxruntime-node'], false, 'postinstall runs it on request instead');
});

const installer = join(repoRoot, 'tools', 'onnxruntime-install.mjs');
const cudaLibrary = join(
  repoRoot,
  'node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so',
);

function install(env: Record<string, string | undefined>) {
  const { ONNXRUNTIME_NODE_INSTALL: _, ...inherited } = process.env;
  return spawnSync(process.execPath, [installer], {
    cwd: repoRoot,
    env: { ...inherited, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
}

test('without ONNXRUNTIME_NODE_INSTALL (or with skip) the install fetches nothing and says nothing', () => {
  for (const value of [undefined, 'skip']) {
    const run = install({ ONNXRUNTIME_NODE_INSTALL: value });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout + run.stderr, '');
  }
});

test("ONNXRUNTIME_NODE_INSTALL=cuda12 runs onnxruntime-node's download, and its failure fails the install", async (t) => {
  if (`${process.platform}/${process.arch}` !== 'linux/x64') {
    t.skip('onnxruntime-node fetches CUDA libraries only on linux/x64');
    return;
  }
  if (existsSync(cudaLibrary)) {
    t.skip('the CUDA provider is already installed here, so there is nothing to fetch');
    return;
  }
  // A proxy address nothing listens on: the download cannot reach NuGet, here or on a networked host.
  const closed = await new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
  const proxy = `http://127.0.0.1:${closed}`;
  const run = install({
    ONNXRUNTIME_NODE_INSTALL: 'cuda12',
    GLOBAL_AGENT_HTTPS_PROXY: proxy,
    GLOBAL_AGENT_HTTP_PROXY: proxy,
  });
  assert.notEqual(run.status, 0, 'a GPU host whose CUDA download failed must not finish npm ci');
  assert.match(run.stdout, /installing 'cuda12'/);
  assert.match(run.stderr, /ECONNREFUSED/);
  assert.match(run.stderr, /could not install 'cuda12'/);
});
