import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  ConfigError,
  configKeysMarkdown,
  describeConfigKeys,
  loadConfig,
  redact,
  redactText,
} from '../../config/index.ts';
import { configKeys } from '../../config/keys.ts';

const work = mkdtempSync(join(tmpdir(), 'clora-config-'));
after(() => rmSync(work, { recursive: true, force: true }));

const discordToken = `${'MTIzNDU2Nzg5MDEyMzQ1Njc4OQ'}.GaBcDe.${'x'.repeat(38)}`;
const slackToken = 'xoxb-1111-2222-abcdefghijklmnop';

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${e}`);
    return e;
  }
  assert.fail('expected loadConfig to throw');
}

function writeJson(name: string, value: unknown): string {
  const path = join(work, name);
  writeFileSync(path, typeof value === 'string' ? value : JSON.stringify(value));
  return path;
}

describe('loadConfig', () => {
  test('defaults, grouped and typed, with paths under the working directory', () => {
    const c = loadConfig({}, { cwd: work });
    assert.deepEqual(c.engine, {
      modelPath: undefined,
      tokenizerDir: undefined,
      loraDir: join(work, 'loras'),
      cacheDir: join(work, '.cache'),
      device: 'cpu',
      threads: 0,
      dtype: 'float32',
      optimization: 'all',
      attention: 'chunked',
      prepackWeights: false,
      memoryBudgetMb: undefined,
      clipSkip: 0,
      guidanceIterations: 20,
      guidanceLossThreshold: undefined,
    });
    assert.deepEqual(c.queue, {
      redisUrl: undefined,
      perUserLimit: 1,
      perScopeCap: 20,
      resultTtlSeconds: 86400,
    });
    assert.deepEqual(c.limits, { maxLoras: 8, maxSteps: 150, maxSize: 1024, loraUploadMaxMb: 256 });
    assert.deepEqual(c.playground, { host: '127.0.0.1', port: 3000 });
    assert.equal(c.logLevel, 'info');
    assert.equal(c.discord, undefined);
    assert.equal(c.slack, undefined);
  });

  test('takes a memory budget in MiB for the batches, and refuses one too small to hold a model', () => {
    assert.equal(
      loadConfig({ ENGINE_MEMORY_BUDGET_MB: '24576' }, { cwd: work }).engine.memoryBudgetMb,
      24576,
    );
    assert.throws(
      () => loadConfig({ ENGINE_MEMORY_BUDGET_MB: '100' }, { cwd: work }),
      /ENGINE_MEMORY_BUDGET_MB/,
    );
  });

  test('reads numbers and choices from the environment; an empty variable counts as unset', () => {
    const c = loadConfig(
      {
        MAX_STEPS: '40',
        ENGINE_DEVICE: 'cuda',
        ENGINE_DTYPE: 'float16',
        ENGINE_THREADS: '4',
        PLAYGROUND_PORT: '',
        MODEL_PATH: 'models/sd15',
      },
      { cwd: work },
    );
    assert.equal(c.limits.maxSteps, 40);
    assert.equal(c.engine.device, 'cuda');
    assert.equal(c.engine.dtype, 'float16');
    assert.equal(c.engine.threads, 4);
    assert.equal(c.playground.port, 3000);
    assert.equal(c.engine.modelPath, join(work, 'models/sd15'));
    assert.equal(c.engine.tokenizerDir, undefined, 'unset: the checkpoint finds its own tokenizer/');
  });

  test('a config file supplies keys, the environment wins, file paths are relative to the file', () => {
    const file = writeJson('clora.json', {
      MAX_STEPS: 60,
      MAX_LORAS: 4,
      LORA_DIR: 'my-loras',
      LOG_LEVEL: null,
    });
    const c = loadConfig({ CLORA_CONFIG: file, MAX_LORAS: '3', CACHE_DIR: 'cache' }, { cwd: '/' });
    assert.equal(c.limits.maxSteps, 60, 'from the file');
    assert.equal(c.limits.maxLoras, 3, 'the environment wins');
    assert.equal(c.engine.loraDir, join(work, 'my-loras'));
    assert.equal(c.engine.cacheDir, '/cache');
    assert.equal(c.logLevel, 'info', 'null in the file means unset');
    assert.equal(c.file, file);
  });

  test('every bad key is listed with its value and what is expected', () => {
    const e = configError(() =>
      loadConfig({ MAX_STEPS: 'many', ENGINE_DEVICE: 'tpu', PLAYGROUND_PORT: '70000', MAX_SIZE: '12.5' }),
    );
    assert.deepEqual(
      e.issues.map((i) => i.key),
      ['PLAYGROUND_PORT', 'ENGINE_DEVICE', 'MAX_STEPS', 'MAX_SIZE'],
    );
    assert.match(e.message, /MAX_STEPS="many" \(environment\): expected an integer from 1 to 1000/);
    assert.match(e.message, /ENGINE_DEVICE="tpu" \(environment\): expected one of cpu, cuda/);
    assert.match(e.message, /PLAYGROUND_PORT="70000" .*from 0 to 65535/);
    assert.match(e.message, /MAX_SIZE="12.5" .*multiple of 64/);
    assert.match(e.message, /^invalid configuration \(4 keys\)/);
  });

  test('secrets are never shown in errors; URL passwords are masked', () => {
    const e = configError(() =>
      loadConfig({
        SLACK_BOT_TOKEN: 'xoxp-not-a-bot-token-12345',
        SLACK_SIGNING_SECRET: 'sig',
        REDIS_URL: 'http://admin:hunter2hunter2@redis.internal:6379',
      }),
    );
    assert.doesNotMatch(e.message, /xoxp-not-a-bot-token/);
    assert.doesNotMatch(e.message, /hunter2/);
    assert.match(
      e.message,
      /SLACK_BOT_TOKEN=<secret, 26 chars> \(environment\): expected a Slack bot token \(xoxb-…\)/,
    );
    assert.match(e.message, /REDIS_URL="http:\/\/\*\*\*@redis.internal:6379" .*redis:\/\/ or rediss:\/\//);
  });

  test('float16 needs cuda', () => {
    const e = configError(() => loadConfig({ ENGINE_DTYPE: 'float16' }));
    assert.deepEqual(e.issues, [
      {
        key: 'ENGINE_DTYPE',
        shown: '"float16"',
        source: 'environment',
        expected: 'float32 unless ENGINE_DEVICE=cuda',
      },
    ]);
  });

  test('Discord needs its application id; Slack needs a signing secret or an app token', () => {
    const discord = configError(() => loadConfig({ DISCORD_TOKEN: discordToken }));
    assert.deepEqual(
      discord.issues.map((i) => [i.key, i.source]),
      [['DISCORD_APPLICATION_ID', 'unset']],
    );
    const c = loadConfig({
      DISCORD_TOKEN: discordToken,
      DISCORD_APPLICATION_ID: '123456789012345678',
      DISCORD_GUILD_ID: '223456789012345678',
      SLACK_BOT_TOKEN: slackToken,
      SLACK_APP_TOKEN: 'xapp-1-A0000-1234567890-abcdef',
    });
    assert.equal(c.discord?.token, discordToken);
    assert.equal(c.discord?.guildId, '223456789012345678');
    assert.equal(c.slack?.mode, 'socket');

    const slack = configError(() => loadConfig({ SLACK_BOT_TOKEN: slackToken }));
    assert.deepEqual(
      slack.issues.map((i) => i.key),
      ['SLACK_SIGNING_SECRET'],
    );
    assert.equal(
      loadConfig({ SLACK_BOT_TOKEN: slackToken, SLACK_SIGNING_SECRET: 'abcdef0123' }).slack?.mode,
      'http',
    );
  });

  test('half a platform is refused, naming the missing key, not left to open the playground', () => {
    const half = (env: Record<string, string>) => configError(() => loadConfig(env)).issues;
    assert.deepEqual(half({ SLACK_SIGNING_SECRET: 'abcdef0123' }), [
      {
        key: 'SLACK_BOT_TOKEN',
        source: 'unset',
        expected: 'a Slack bot token (xoxb-…) (SLACK_SIGNING_SECRET is set)',
      },
    ]);
    assert.deepEqual(
      half({ SLACK_APP_TOKEN: 'xapp-1-A0000-1234567890-abcdef', SLACK_SIGNING_SECRET: 'abcdef0123' }).map(
        (i) => i.key,
      ),
      ['SLACK_BOT_TOKEN'],
      'named once',
    );
    assert.deepEqual(
      half({ DISCORD_APPLICATION_ID: '123456789012345678' }).map((i) => [i.key, i.expected]),
      [['DISCORD_TOKEN', 'a Discord bot token (DISCORD_APPLICATION_ID is set)']],
    );
    assert.deepEqual(
      half({ DISCORD_GUILD_ID: '223456789012345678' }).map((i) => i.key),
      ['DISCORD_TOKEN'],
    );
  });

  test('MAX_SIZE must be a multiple of 64, as image sides are', () => {
    const e = configError(() => loadConfig({ MAX_SIZE: '1000' }));
    assert.deepEqual(e.issues, [
      {
        key: 'MAX_SIZE',
        shown: '"1000"',
        source: 'environment',
        expected: 'a multiple of 64 from 64 to 4096',
      },
    ]);
    assert.equal(loadConfig({ MAX_SIZE: '768' }).limits.maxSize, 768);
  });

  test('roles: a worker needs Redis and a model; a bot needs a model only without Redis', () => {
    const worker = configError(() => loadConfig({}, { role: 'worker' }));
    assert.deepEqual(
      worker.issues.map((i) => i.key),
      ['REDIS_URL', 'MODEL_PATH'],
    );
    assert.match(
      worker.message,
      /REDIS_URL \(unset\): expected a Redis URL .*\(a worker takes its jobs from Redis\)/,
    );
    const bot = configError(() => loadConfig({}, { role: 'bot' }));
    assert.deepEqual(
      bot.issues.map((i) => i.key),
      ['MODEL_PATH'],
    );
    assert.equal(
      loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379' }, { role: 'bot' }).engine.modelPath,
      undefined,
    );
    assert.ok(loadConfig({ REDIS_URL: 'rediss://r:6380', MODEL_PATH: '/m' }, { role: 'worker' }));
  });

  test('file problems: missing, not JSON, not an object, unknown or misspelt keys, objects as values', () => {
    const missing = configError(() => loadConfig({ CLORA_CONFIG: join(work, 'nope.json') }));
    assert.match(
      missing.message,
      /CLORA_CONFIG=".*nope.json" \(environment\): expected a readable JSON file \(ENOENT\)/,
    );
    const broken = configError(() =>
      loadConfig({ CLORA_CONFIG: writeJson('broken.json', '{"MAX_STEPS": 4') }),
    );
    assert.match(broken.message, /CLORA_CONFIG=.*expected a JSON file/);
    const list = configError(() => loadConfig({ CLORA_CONFIG: writeJson('list.json', [1]) }));
    assert.match(list.message, /expected a JSON object of configuration keys/);
    const keys = configError(() =>
      loadConfig({
        CLORA_CONFIG: writeJson('keys.json', { MAX_STEP: 5, colour: 'red', MAX_LORAS: { n: 1 } }),
      }),
    );
    assert.deepEqual(
      keys.issues.map((i) => [i.key, i.expected]),
      [
        ['MAX_STEP', 'a known key (did you mean MAX_STEPS?)'],
        ['colour', 'a known key'],
        ['MAX_LORAS', 'an integer from 1 to 64'],
      ],
    );
    assert.equal(keys.issues[0].source, 'config file');
  });
});

describe('describeConfigKeys', () => {
  test('lists every key once, with defaults and secrets marked', () => {
    const docs = describeConfigKeys();
    const names = docs.map((d) => d.name);
    assert.deepEqual(names, ['CLORA_CONFIG', ...Object.keys(configKeys)]);
    assert.equal(new Set(names).size, names.length);
    const byName = new Map(docs.map((d) => [d.name, d]));
    assert.equal(byName.get('MAX_STEPS')?.default, '150');
    assert.equal(byName.get('ENGINE_DEVICE')?.expects, 'one of cpu, cuda');
    assert.deepEqual(
      docs.filter((d) => d.secret).map((d) => d.name),
      ['DISCORD_TOKEN', 'SLACK_BOT_TOKEN', 'SLACK_SIGNING_SECRET', 'SLACK_APP_TOKEN', 'CIVITAI_TOKEN'],
    );
    for (const d of docs) assert.ok(d.description.length > 10, `${d.name} has a description`);
    const table = configKeysMarkdown().split('\n');
    assert.equal(table.length, docs.length + 2);
    assert.ok(table.includes('| `MAX_STEPS` | `150` | most denoising steps one job may ask for |'));
  });

  test('each documented default is what loadConfig applies', () => {
    const c = loadConfig({}, { cwd: work });
    const byName = new Map(describeConfigKeys().map((d) => [d.name, d.default]));
    assert.equal(byName.get('PLAYGROUND_PORT'), String(c.playground.port));
    assert.equal(byName.get('USER_CONCURRENCY'), String(c.queue.perUserLimit));
    assert.equal(byName.get('QUEUE_CAP_PER_SCOPE'), String(c.queue.perScopeCap));
    assert.equal(byName.get('RESULT_TTL_SECONDS'), String(c.queue.resultTtlSeconds));
    assert.equal(byName.get('MAX_LORAS'), String(c.limits.maxLoras));
    assert.equal(byName.get('ENGINE_DTYPE'), c.engine.dtype);
  });
});

describe('redact', () => {
  test('a loaded config logs without its secrets', () => {
    const signing = 'f00dfeedf00dfeedf00dfeed';
    const c = loadConfig({
      DISCORD_TOKEN: discordToken,
      DISCORD_APPLICATION_ID: '123456789012345678',
      SLACK_BOT_TOKEN: slackToken,
      SLACK_SIGNING_SECRET: signing,
      REDIS_URL: 'redis://default:s3cretpass@redis:6379',
      MODEL_PATH: '/models/sd15',
    });
    const line = JSON.stringify(redact(c));
    for (const secret of [discordToken, slackToken, signing, 's3cretpass']) {
      assert.ok(!line.includes(secret), `${secret.slice(0, 6)}… leaked`);
    }
    assert.ok(line.includes('/models/sd15'), 'a model path is not a token');
    assert.equal(c.discord?.token, discordToken, 'the config itself is untouched');
    // Once loaded, a secret is masked wherever it turns up, whatever its shape.
    assert.equal(
      redactText(`signature check with ${signing} failed`),
      'signature check with [redacted] failed',
    );
  });

  test('token shapes, authorization values and URL credentials are masked in any text', () => {
    assert.equal(redactText(`login ${discordToken} ok`), 'login [redacted] ok');
    assert.equal(redactText(`token=${slackToken}`), 'token=[redacted]');
    assert.equal(redactText('Authorization: Bot abcdefghijklmnopqrstuvwxyz'), 'Authorization: [redacted]');
    assert.equal(redactText('connect rediss://u:pw@host:6380/0'), 'connect rediss://[redacted]@host:6380/0');
    assert.equal(redactText('plain words stay'), 'plain words stay');
  });

  test('walks objects, arrays and errors; handles cycles; keeps other objects', () => {
    const err = new TypeError(`bad ${slackToken}`);
    const cyclic: Record<string, unknown> = { list: [slackToken, 3], apiKey: 'k', err };
    cyclic.self = cyclic;
    const out = redact(cyclic);
    assert.deepEqual(out.list, ['[redacted]', 3]);
    assert.equal(out.apiKey, '[redacted]');
    assert.equal(out.self, out);
    assert.ok(out.err instanceof Error);
    assert.equal((out.err as Error).name, 'TypeError');
    assert.equal((out.err as Error).message, 'bad [redacted]');
    assert.ok(!(out.err as Error).stack?.includes(slackToken));
    assert.equal(
      redact({ tokenizerDir: '/m/tokenizer' }).tokenizerDir,
      '/m/tokenizer',
      'a path, not a token',
    );
    const bytes = new Uint8Array([1, 2]);
    assert.equal(redact({ bytes }).bytes, bytes);
    assert.equal(redact(7), 7);
  });
});

describe('guidance settings', () => {
  test('GUIDANCE_ITERATIONS and GUIDANCE_LOSS_THRESHOLD are read and checked', () => {
    const c = loadConfig({ GUIDANCE_ITERATIONS: '5', GUIDANCE_LOSS_THRESHOLD: '0.8' });
    assert.equal(c.engine.guidanceIterations, 5);
    assert.equal(c.engine.guidanceLossThreshold, 0.8);
    assert.throws(
      () => loadConfig({ GUIDANCE_ITERATIONS: '0' }),
      /GUIDANCE_ITERATIONS="0" .*an integer from 1 to 100/,
    );
    assert.throws(
      () => loadConfig({ GUIDANCE_LOSS_THRESHOLD: 'low' }),
      /GUIDANCE_LOSS_THRESHOLD="low" .*a number from 0 to 10/,
    );
  });
});
