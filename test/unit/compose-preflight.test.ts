// Every input error of /compose is answered before a job is queued: no LoRA bound, a subject
// past CLIP's 77 tokens, an unusable LoRA (with its one true reason); a cut prompt and a LoRA
// found by a folded name are said on the result card.

import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { composePreflight } from '../../bot/engine-host/preflight.ts';
import { LoraLibrary } from '../../bot/library/index.ts';
import { LocalQueue } from '../../bot/queue/index.ts';
import { pictureComparison } from '../../bot/render/compare.ts';
import { readRecipe } from '../../bot/render/recipe.ts';
import { loraCatalog, parseCompose, resolveLoras } from '../../commands/compose/index.ts';
import type { ComposeJobData, ComposeJobProgress, ComposeJobValue } from '../../commands/jobs.ts';
import { lorasReply } from '../../commands/loras.ts';
import { checkReply, type MessageReply, type Reply } from '../../commands/reply.ts';
import { type ChatContext, ComposeCommands, type ComposeRecord } from '../../commands/service.ts';
import { ClipTokenizer } from '../../engine/tokenizer/index.ts';
import { fixtureDir } from '../fixtures.ts';

const fx = fixtureDir();
const work = mkdtempSync(join(tmpdir(), 'clora-preflight-'));
const tokenizer = ClipTokenizer.fromDir(join(fx, 'model', 'tokenizer'));
const alice: ChatContext = {
  platform: 'cli',
  userId: 'alice',
  userName: 'Alice',
  scope: 'test',
  channel: 'c',
  isAdmin: false,
};

let library: LoraLibrary;
let queue: LocalQueue<ComposeJobData, ComposeJobValue, ComposeJobProgress>;
let commands: ComposeCommands;
before(async () => {
  const dir = join(work, 'loras');
  mkdirSync(dir);
  for (const f of ['lora_i_kohya_unet_te', 'lora_ii_kohya_unet_attn_ff'])
    copyFileSync(join(fx, 'loras', `${f}.safetensors`), join(dir, `${f}.safetensors`));
  writeFileSync(join(dir, 'cut.safetensors'), Buffer.from('{"a":1}').subarray(0, 5));
  library = await LoraLibrary.open(dir, undefined, { watch: false, rescanIntervalMs: 0 });
  await library.settled();
  // No worker: whatever is queued stays queued, so a test sees exactly what was let through.
  queue = new LocalQueue({ limits: { perUser: 100, perScope: 100 }, resultTtlMs: 60_000 });
  commands = new ComposeCommands({
    queue,
    library,
    readRecipe,
    drawComparison: pictureComparison,
    settings: (await import('../../commands/compose/index.ts')).DEFAULT_COMPOSE_SETTINGS,
    model: () => ({ ready: true }),
    preflight: composePreflight(tokenizer, library),
  });
});
after(async () => {
  library.close();
  await queue.close();
  rmSync(work, { recursive: true, force: true });
});

const text = (reply: Reply) => JSON.stringify(reply);
const filler = (n: number) => Array.from({ length: n }, (_, i) => `word${i}`).join(' ');
const LORA = 'lora-i-kohya-unet-te';

describe('answered before queueing', () => {
  it('a command without a binding is refused with the way to draw without LoRAs', async () => {
    const outcome = await commands.compose('a clock showing 10:30 on a wall', alice);
    assert.equal(outcome.jobId, undefined);
    assert.match(text(outcome.reply), /nothing here binds a LoRA.*--method none/);
    assert.match(text(outcome.reply), /Try: `\/compose a clock showing 10:30 on a wall --method none`/);
    const merge = await commands.compose('a clock --method merge', alice);
    assert.equal(merge.jobId, undefined);
    assert.match(text(merge.reply), /use --method none/);
    assert.doesNotMatch(text(merge.reply), /Try:/);
    const plain = await commands.compose('a clock showing 10:30 on a wall --method none --steps 2', alice);
    assert.ok(plain.jobId, text(plain.reply));
  });

  it('a subject past the 77 tokens CLIP reads is refused, naming it', async () => {
    const outcome = await commands.compose(`${filler(80)} and a cat:<${LORA}>`, alice);
    assert.equal(outcome.jobId, undefined);
    assert.match(text(outcome.reply), /the subject 'cat' lies past the 75 tokens CLIP reads/);
  });

  it('an unusable LoRA gets its real reason, the same /loras and its card give', async () => {
    const outcome = await commands.compose('cat:<cut> in a house', alice);
    assert.equal(outcome.jobId, undefined);
    const entry = library.get('cut');
    assert.ok(entry?.check.state === 'unusable');
    const reason = entry.check.reason;
    assert.match(reason, /too short|truncated|corrupt/);
    assert.ok(text(outcome.reply).includes(`the LoRA 'cut' cannot be used: ${reason}`), text(outcome.reply));
    assert.ok(text(lorasReply(library)).includes(`cannot be used: ${reason}`.slice(0, 60)));
    const card = (await commands.lora('cut')) as MessageReply;
    assert.equal(card.card?.fields[0].name, 'Why it cannot be used');
    assert.equal(card.card?.fields[0].value, reason);
    assert.ok(!card.card?.fields.some((f) => f.name === 'Use it'), 'no "Use it" for an unusable LoRA');
    assert.ok(!card.card?.fields.some((f) => /SD 1\.5/.test(f.value)), 'no made-up reason');
  });
});

describe('said on the card', () => {
  async function cardOf(input: string): Promise<{ data: ComposeJobData; card: MessageReply }> {
    const outcome = await commands.compose(input, alice);
    assert.ok(outcome.jobId, text(outcome.reply));
    const job = (await queue.get(outcome.jobId)) as ComposeRecord;
    const done: ComposeRecord = {
      ...job,
      state: 'completed',
      result: {
        value: {
          seed: 1,
          prompts: [],
          width: 512,
          height: 512,
          method: 'clora',
          elapsedMs: 10,
          timings: {},
          pictures: { image: 'image/png' },
        },
        blobs: { image: new Uint8Array([1]) },
      },
    };
    return { data: job.data, card: commands.resultReply(done) };
  }
  const field = (card: MessageReply, name: string) => card.card?.fields.find((f) => f.name === name)?.value;

  it('what CLIP’s 77-token limit cut from a long prompt', async () => {
    const { data, card } = await cardOf(`cat:<${LORA}> ${filler(90)}`);
    assert.equal(data.notes?.length, 1);
    assert.match(field(card, 'Note') ?? '', /CLIP reads 75 tokens; cut from the prompt: “word\d+ .* word89”/);
    // The longest prompt the parser takes still gives a card within the platforms' limits.
    const longest = await cardOf(`cat:<${LORA}> ${'ab '.repeat(330)} --neg "${'cd '.repeat(330)}"`);
    assert.match(field(longest.card, 'Note') ?? '', /cut from the negative prompt/);
    assert.deepEqual(checkReply(longest.card), []);
    const short = await cardOf(`cat:<${LORA}> in a house`);
    assert.equal(field(short.card, 'Note'), undefined);
  });

  it('which LoRA a folded name found (case, _, - and spaces)', async () => {
    for (const typed of ['lora_i_kohya_unet_te', 'LORA I KOHYA_UNET-te']) {
      const { card } = await cardOf(`cat:<${typed}> in a house`);
      assert.equal(field(card, 'LoRAs'), `cat → ${LORA} (you typed '${typed}')`);
    }
    const exact = await cardOf(`cat:<${LORA}> in a house`);
    assert.equal(field(exact.card, 'LoRAs'), `cat → ${LORA}`);
  });
});

describe('resolving names', () => {
  const catalog = loraCatalog(['tabby-cat', 'plush', 'a-b', 'a_b']);
  const resolve = (input: string) => {
    const parsed = parseCompose(input);
    assert.ok(parsed.ok);
    return resolveLoras(parsed.request, catalog, parsed.source);
  };

  it('folds case, _, - and spaces, and reports the names it folded', () => {
    const r = resolve('cat:<Tabby_Cat> dog:<PLUSH> x');
    assert.ok(r.ok);
    assert.deepEqual(
      r.request.bindings.map((b) => b.lora),
      ['tabby-cat', 'plush'],
    );
    assert.deepEqual(r.renamed, [{ typed: 'Tabby_Cat', lora: 'tabby-cat' }]);
    assert.ok(resolve('cat:<tabby cat> x').ok);
  });

  it('an exact name wins; two names folding alike are never guessed between', () => {
    const exact = resolve('cat:<a_b> x');
    assert.ok(exact.ok && exact.request.bindings[0].lora === 'a_b' && exact.renamed === undefined);
    assert.ok(!resolve('cat:<A B> x').ok);
  });

  it('an unknown bare name says how to keep the words as text', () => {
    const r = resolve('note:important cat:<plush>');
    assert.ok(!r.ok);
    assert.match(r.error.message, /unknown LoRA 'important'.*quote it: "note:important"/);
  });
});
