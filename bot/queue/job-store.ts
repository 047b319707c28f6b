// The Redis side of what BullMQ does not keep for us: each job's record (data, owner, state,
// result), its blobs as separate keys, the live-job sets behind the limits, and recent run
// times. Every change of state is one Lua script, so bot and workers never race on a record.
//
// Keys, under base = `<prefix>:<queue>:clora`:
//   base:job:<id>            hash: data userId scope priority state attempts enqueuedAt startedAt
//                            finishedAt progress result blobs error cancel ttl delivery delivered
//   base:blob:<id>:<name>    string: blob bytes, same expiry as the record
//   base:user:<userId>       set of live job ids        base:scope:<scope>  likewise
//   base:runs                list of recent run times (ms), newest first
//   base:cancel              pub/sub channel: ids of jobs to abort on whichever worker runs them
// Scripts build some key names inside Lua, so with Redis Cluster use a hash-tagged prefix.
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { JobFailure, JobRecord, JobState } from './types.ts';

class LuaScript {
  readonly #sha: string;
  constructor(readonly source: string) {
    this.#sha = createHash('sha1').update(source).digest('hex');
  }

  async run(redis: Redis, keys: string[], args: (string | number | Uint8Array)[]): Promise<unknown> {
    const argv = args.map((a) =>
      a instanceof Uint8Array ? Buffer.from(a.buffer, a.byteOffset, a.byteLength) : a,
    );
    try {
      return await redis.evalsha(this.#sha, keys.length, ...keys, ...argv);
    } catch (e) {
      // A restarted Redis has an empty script cache.
      if (!String(e).includes('NOSCRIPT')) throw e;
      return await redis.eval(this.source, keys.length, ...keys, ...argv);
    }
  }
}

const LIVE = `local function live(state) return state == 'queued' or state == 'running' end\n`;

/** KEYS: user set, scope set, record. ARGV: id, perUser, perScope, now, base, BullMQ job-key prefix, staleMs, field/value pairs. */
const admitScript = new LuaScript(`${LIVE}
local function prune(set)
  for _, member in ipairs(redis.call('SMEMBERS', set)) do
    local rec = ARGV[5] .. ':job:' .. member
    if not live(redis.call('HGET', rec, 'state')) then
      redis.call('SREM', set, member)
    elseif redis.call('EXISTS', ARGV[6] .. member) == 0
        and tonumber(ARGV[4]) - tonumber(redis.call('HGET', rec, 'enqueuedAt')) > tonumber(ARGV[7]) then
      -- BullMQ has no such job: its enqueue never completed. Free the slot and say so.
      redis.call('HSET', rec, 'state', 'failed', 'finishedAt', ARGV[4],
        'error', cjson.encode({message = 'the job was lost before it reached a worker', kind = 'internal'}))
      redis.call('PEXPIRE', rec, redis.call('HGET', rec, 'ttl'))
      redis.call('SREM', set, member)
    end
  end
end
prune(KEYS[1])
prune(KEYS[2])
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 'user-limit' end
if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[3]) then return 'scope-cap' end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[3], unpack(ARGV, 8))
return 'ok'
`);

/** KEYS: record. ARGV: now, attempt. */
const startScript = new LuaScript(`${LIVE}
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'missing'} end
if not live(state) then return {'final', state} end
if redis.call('HGET', KEYS[1], 'cancel') == '1' then return {'cancel'} end
redis.call('HSET', KEYS[1], 'state', 'running', 'startedAt', ARGV[1], 'attempts', ARGV[2])
redis.call('HDEL', KEYS[1], 'progress')
return {'run', unpack(redis.call('HMGET', KEYS[1], 'data', 'userId', 'scope'))}
`);

/** KEYS: record. ARGV: progress JSON. Returns 1 when the job should stop. */
const progressScript = new LuaScript(`
if redis.call('HGET', KEYS[1], 'state') ~= 'running' then return 0 end
redis.call('HSET', KEYS[1], 'progress', ARGV[1])
if redis.call('HGET', KEYS[1], 'cancel') == '1' then return 1 end
return 0
`);

/** KEYS: record. Returns 1 when the job was live and is now marked for cancelling. */
const requestCancelScript = new LuaScript(`${LIVE}
if not live(redis.call('HGET', KEYS[1], 'state')) then return 0 end
redis.call('HSET', KEYS[1], 'cancel', '1')
return 1
`);

/**
 * KEYS: record. ARGV: base, id, target state, now, run ms, result JSON, blob names JSON,
 * error JSON, recent runs kept, blob bytes…. Moves a live job to `target` (a cancel request
 * wins over any target); a job already finished keeps its outcome. Returns the state it is in.
 */
const settleScript = new LuaScript(`${LIVE}
local rec = KEYS[1]
local state = redis.call('HGET', rec, 'state')
if not live(state) then return state or 'missing' end
local base, id, target = ARGV[1], ARGV[2], ARGV[3]
if redis.call('HGET', rec, 'cancel') == '1' then target = 'cancelled' end
if target == 'queued' then
  redis.call('HSET', rec, 'state', 'queued', 'error', ARGV[8])
  return 'queued'
end
local ttl = redis.call('HGET', rec, 'ttl')
if target == 'completed' then
  for i, name in ipairs(cjson.decode(ARGV[7])) do
    redis.call('SET', base .. ':blob:' .. id .. ':' .. name, ARGV[9 + i], 'PX', ttl)
  end
  redis.call('HSET', rec, 'result', ARGV[6], 'blobs', ARGV[7])
  redis.call('LPUSH', base .. ':runs', ARGV[5])
  redis.call('LTRIM', base .. ':runs', 0, tonumber(ARGV[9]) - 1)
end
if target == 'failed' then redis.call('HSET', rec, 'error', ARGV[8]) else redis.call('HDEL', rec, 'error') end
redis.call('HSET', rec, 'state', target, 'finishedAt', ARGV[4])
redis.call('PEXPIRE', rec, ttl)
redis.call('SREM', base .. ':user:' .. redis.call('HGET', rec, 'userId'), id)
redis.call('SREM', base .. ':scope:' .. redis.call('HGET', rec, 'scope'), id)
return target
`);

/** KEYS: record. ARGV: delivery JSON. Returns 1 when the record exists. */
const setDeliveryScript = new LuaScript(`
if not redis.call('HGET', KEYS[1], 'state') then return 0 end
redis.call('HSET', KEYS[1], 'delivery', ARGV[1])
return 1
`);

/** KEYS: record. Returns 1 for the first claim of an existing record. */
const claimDeliveryScript = new LuaScript(`
if not redis.call('HGET', KEYS[1], 'state') then return 0 end
return redis.call('HSETNX', KEYS[1], 'delivered', '1')
`);

export type Started =
  | { kind: 'run'; dataJson: string; userId: string; scope: string }
  | { kind: 'cancel' }
  | { kind: 'final'; state: JobState }
  | { kind: 'missing' };

export type Settlement =
  | { target: 'completed'; runMs: number; valueJson: string; blobs: [string, Uint8Array][] }
  | { target: 'failed' | 'queued'; error: JobFailure }
  | { target: 'cancelled' };

export interface NewJob {
  id: string;
  dataJson: string;
  userId: string;
  scope: string;
  priority: number;
  ttlMs: number;
  enqueuedAt: number;
}

/** How long an admitted job may take to appear in BullMQ before admit counts it as lost. */
const ENQUEUE_GRACE_MS = 60_000;

export class JobStore {
  constructor(
    private readonly redis: Redis,
    /** `<prefix>:<queue>:clora` */
    readonly base: string,
    private readonly recentRuns: number,
  ) {}

  get cancelChannel(): string {
    return `${this.base}:cancel`;
  }

  #record(id: string): string {
    return `${this.base}:job:${id}`;
  }

  /** Records the job and takes a live slot, or names the limit that is full. */
  async admit(
    job: NewJob,
    limits: { perUser: number; perScope: number },
    bullJobPrefix: string,
  ): Promise<'ok' | 'user-limit' | 'scope-cap'> {
    const fields = {
      data: job.dataJson,
      userId: job.userId,
      scope: job.scope,
      priority: job.priority,
      state: 'queued',
      attempts: 0,
      enqueuedAt: job.enqueuedAt,
      cancel: '0',
      ttl: job.ttlMs,
    };
    const keys = [`${this.base}:user:${job.userId}`, `${this.base}:scope:${job.scope}`, this.#record(job.id)];
    const args = [
      job.id,
      limits.perUser,
      limits.perScope,
      Date.now(),
      this.base,
      bullJobPrefix,
      ENQUEUE_GRACE_MS,
    ];
    return (await admitScript.run(this.redis, keys, [...args, ...Object.entries(fields).flat()])) as
      | 'ok'
      | 'user-limit'
      | 'scope-cap';
  }

  async start(id: string, attempt: number): Promise<Started> {
    const reply = (await startScript.run(this.redis, [this.#record(id)], [Date.now(), attempt])) as string[];
    switch (reply[0]) {
      case 'run':
        return { kind: 'run', dataJson: reply[1], userId: reply[2], scope: reply[3] };
      case 'final':
        return { kind: 'final', state: reply[1] as JobState };
      case 'cancel':
        return { kind: 'cancel' };
      default:
        return { kind: 'missing' };
    }
  }

  /** Stores progress; true when the job has been asked to stop. */
  async progress(id: string, progressJson: string): Promise<boolean> {
    return (await progressScript.run(this.redis, [this.#record(id)], [progressJson])) === 1;
  }

  async requestCancel(id: string): Promise<boolean> {
    return (await requestCancelScript.run(this.redis, [this.#record(id)], [])) === 1;
  }

  async settle(id: string, s: Settlement): Promise<JobState | 'missing'> {
    const done = s.target === 'completed';
    const args = [
      this.base,
      id,
      s.target,
      Date.now(),
      done ? s.runMs : 0,
      done ? s.valueJson : '',
      JSON.stringify(done ? s.blobs.map(([name]) => name) : []),
      s.target === 'failed' || s.target === 'queued' ? JSON.stringify(s.error) : '',
      this.recentRuns,
      ...(done ? s.blobs.map(([, bytes]) => bytes) : []),
    ];
    return (await settleScript.run(this.redis, [this.#record(id)], args)) as JobState | 'missing';
  }

  /** The record with its blobs; undefined when unknown, expired, or a blob has expired first. */
  async read<Data, Result, Progress>(id: string): Promise<JobRecord<Data, Result, Progress> | undefined> {
    const h = await this.redis.hgetall(this.#record(id));
    if (h.state === undefined) return undefined;
    let result: JobRecord<Data, Result, Progress>['result'];
    if (h.result !== undefined) {
      const names = JSON.parse(h.blobs ?? '[]') as string[];
      const bytes =
        names.length === 0 ? [] : await this.redis.mgetBuffer(names.map((n) => this.#blob(id, n)));
      if (bytes.some((b) => b === null)) return undefined;
      result = {
        value: JSON.parse(h.result),
        blobs: Object.fromEntries(names.map((n, i) => [n, bytes[i] as Buffer])),
      };
    }
    const time = (field: string | undefined) => (field === undefined ? undefined : Number(field));
    const startedAt = time(h.startedAt);
    const finishedAt = time(h.finishedAt);
    return {
      id,
      data: JSON.parse(h.data),
      owner: { userId: h.userId, scope: h.scope },
      priority: Number(h.priority),
      state: h.state as JobState,
      attempts: Number(h.attempts),
      ...(h.progress !== undefined && { progress: JSON.parse(h.progress) }),
      ...(result && { result }),
      ...(h.error !== undefined && { error: JSON.parse(h.error) as JobFailure }),
      cancelRequested: h.cancel === '1',
      enqueuedAt: Number(h.enqueuedAt),
      ...(startedAt !== undefined && { startedAt }),
      ...(finishedAt !== undefined && { finishedAt }),
      ...(h.delivery !== undefined && { delivery: JSON.parse(h.delivery) }),
      delivered: h.delivered === '1',
    };
  }

  async setDelivery(id: string, deliveryJson: string): Promise<boolean> {
    return (await setDeliveryScript.run(this.redis, [this.#record(id)], [deliveryJson])) === 1;
  }

  async claimDelivery(id: string): Promise<boolean> {
    return (await claimDeliveryScript.run(this.redis, [this.#record(id)], [])) === 1;
  }

  async state(id: string): Promise<JobState | undefined> {
    return ((await this.redis.hget(this.#record(id), 'state')) ?? undefined) as JobState | undefined;
  }

  async startedAt(ids: string[]): Promise<(number | undefined)[]> {
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hget(this.#record(id), 'startedAt');
    const replies = (await pipeline.exec()) ?? [];
    return replies.map(([, v]) => (typeof v === 'string' ? Number(v) : undefined));
  }

  async recentRunsMs(): Promise<number[]> {
    return (await this.redis.lrange(`${this.base}:runs`, 0, -1)).map(Number);
  }

  #blob(id: string, name: string): string {
    return `${this.base}:blob:${id}:${name}`;
  }
}
