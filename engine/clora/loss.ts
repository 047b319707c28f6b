// CLoRA's contrastive loss, inside the graph so one run returns the loss and ∂L/∂z.
// Each group member is one (prompt, token) attention map; maps of one concept are
// positives, maps of different concepts negatives; NT-Xent with cosine similarity on
// min–max-normalised flattened maps, averaged over ordered positive pairs.

import { dimMul } from '../graph/dim.ts';
import type { HostTensor, Tensor } from '../graph/index.ts';
import * as G from '../graph/index.ts';

/** One attention map in a concept group: a token position of one branch's prompt. */
export interface GroupMember {
  prompt: number;
  position: number;
}

/** The members of each concept, in group order. Groups are disjoint. */
export type ConceptGroups = readonly (readonly GroupMember[])[];

/** Graph inputs describing the groups: a row selector and the pair masks. */
export interface GroupInputs {
  /** [M, B·T] one-hot: row m picks member m's map out of the B×T token maps */
  select: Tensor;
  /** [M, M] 1 where i≠j belong to the same group */
  positives: Tensor;
  /** [M, M] 1 where i and j belong to different groups */
  negatives: Tensor;
}

/** Declares the group inputs for maps [B, HW, T]. */
export function groupInputs(maps: Tensor, prefix = 'groups'): GroupInputs {
  const g = maps.graph;
  const rows = dimMul(maps.shape[0], maps.shape[2]);
  return {
    select: g.input(`${prefix}.select`, 'float32', ['M', rows]),
    positives: g.input(`${prefix}.positives`, 'float32', ['M', 'M']),
    negatives: g.input(`${prefix}.negatives`, 'float32', ['M', 'M']),
  };
}

/**
 * NT-Xent loss over the group members' maps.
 * @param maps aggregated maps [B, HW, T] (T = 77 tokens)
 */
export function contrastiveLoss(
  maps: Tensor,
  groups: GroupInputs,
  temperature: number,
): { loss: Tensor; embeddings: Tensor } {
  const tokenMajor = G.reshape(G.transpose(maps, [0, 2, 1]), [-1, maps.shape[1]]); // [B·T, HW]
  const rows = G.matmul(groups.select, tokenMajor); // [M, HW]
  const lo = G.reduceMin(rows, -1, true);
  const hi = G.reduceMax(rows, -1, true);
  const embeddings = G.div(G.sub(rows, lo), G.sub(hi, lo));
  const unit = G.div(embeddings, G.sqrt(G.reduceSum(G.mul(embeddings, embeddings), -1, true)));
  const sim = G.mul(G.matmul(unit, G.transposeLast2(unit)), 1 / temperature); // s/τ [M, M]
  const negSum = G.reduceSum(G.mul(G.exp(sim), groups.negatives), -1, true); // [M, 1]
  // −log(e^{s_ij/τ} / (e^{s_ij/τ} + Σ_neg e^{s_ik/τ})) for every ordered pair
  const pairLoss = G.sub(G.log(G.add(G.exp(sim), negSum)), sim);
  const loss = G.div(G.reduceSum(G.mul(pairLoss, groups.positives)), G.reduceSum(groups.positives));
  return { loss, embeddings };
}

/** Host feeds for groupInputs(): selector and pair masks for a batch of B prompts. */
export function groupFeeds(
  groups: ConceptGroups,
  batch: number,
  tokens = 77,
  prefix = 'groups',
): Record<string, HostTensor> {
  const members = groups.flatMap((group, label) => group.map((m) => ({ ...m, label })));
  const m = members.length;
  const select = new Float32Array(m * batch * tokens);
  const positives = new Float32Array(m * m);
  const negatives = new Float32Array(m * m);
  members.forEach((a, i) => {
    if (a.prompt < 0 || a.prompt >= batch || a.position < 0 || a.position >= tokens) {
      throw new RangeError(
        `group member (prompt ${a.prompt}, token ${a.position}) is outside ${batch} prompts × ${tokens} tokens`,
      );
    }
    select[i * batch * tokens + a.prompt * tokens + a.position] = 1;
    members.forEach((b, j) => {
      if (i === j) return;
      if (a.label === b.label) positives[i * m + j] = 1;
      else negatives[i * m + j] = 1;
    });
  });
  if (!positives.some((v) => v > 0))
    throw new RangeError('the concept groups have no positive pair: each group needs two maps');
  return {
    [`${prefix}.select`]: G.hostTensor('float32', select, [m, batch * tokens]),
    [`${prefix}.positives`]: G.hostTensor('float32', positives, [m, m]),
    [`${prefix}.negatives`]: G.hostTensor('float32', negatives, [m, m]),
  };
}

/** The loss on given maps [B, HW, T]: loss, embeddings and ∂loss/∂maps (for tests and the reference runner). */
export function lossOnlyGraph(temperature = 0.5): G.Graph {
  const g = new G.Graph('clora_loss');
  const maps = g.input('maps', 'float32', ['B', 'HW', 'T']);
  const { loss, embeddings } = contrastiveLoss(maps, groupInputs(maps), temperature);
  const [gradMaps] = G.grad([loss], [maps]);
  g.output('loss', loss).output('embeddings', embeddings).output('grad_maps', gradMaps);
  return g;
}
