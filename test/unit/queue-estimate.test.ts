import assert from 'node:assert/strict';
import { test } from 'node:test';
import { estimateStartMs, typicalRunMs } from '../../bot/queue/estimate.ts';

test('no history, no runners: no estimate', () => {
  assert.equal(estimateStartMs(3, [], 1, undefined), undefined);
  assert.equal(estimateStartMs(3, [], 0, 1000), undefined);
  assert.equal(typicalRunMs([]), undefined);
  assert.equal(typicalRunMs([100, 200, 600]), 300);
});

test('one runner: what is left of the running job, then one typical run per job ahead', () => {
  assert.equal(estimateStartMs(0, [400], 1, 1000), 600);
  assert.equal(estimateStartMs(2, [400], 1, 1000), 2600);
  assert.equal(estimateStartMs(0, [], 1, 1000), 0, 'an idle runner starts it now');
  assert.equal(estimateStartMs(1, [1500], 1, 1000), 1000, 'an overdue job counts as ending now');
});

test('several runners: each job ahead takes the runner that frees first', () => {
  // Runners free at 100 and 700; jobs ahead take 100→1100, then 700→1700; ours starts at 1100.
  assert.equal(estimateStartMs(2, [900, 300], 2, 1000), 1100);
  // Three runners, one idle: the first job ahead takes it, ours waits for the next to free (500).
  assert.equal(estimateStartMs(1, [500, 200], 3, 1000), 500);
});
