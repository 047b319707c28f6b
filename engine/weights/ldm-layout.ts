// The original LDM/CompVis key layout of SD 1.x and its diffusers equivalent. A layout (how
// many levels, resnets per level, which levels have attention) gives a table of module-path
// prefixes in both namings; keys convert through that table in either direction, so the
// checkpoint loader (LDM → diffusers) and the LoRA reader (diffusers → LDM-style kohya names)
// share one mapping.

export interface UNetLayout {
  levels: number;
  layersPerBlock: number;
  downAttention: boolean[];
  upAttention: boolean[];
}

export interface VaeLayout {
  levels: number;
  layersPerBlock: number;
}

/** What sits under a prefix, which decides how the rest of the path is renamed. */
type Part = 'plain' | 'transformer' | 'unet-resnet' | 'vae-resnet' | 'vae-attention';

/** [LDM name, diffusers name] of the children of each part; transformers keep their names. */
const CHILDREN: Record<Exclude<Part, 'transformer'>, readonly (readonly [string, string])[]> = {
  plain: [],
  'unet-resnet': [
    ['in_layers.0', 'norm1'],
    ['in_layers.2', 'conv1'],
    ['emb_layers.1', 'time_emb_proj'],
    ['out_layers.0', 'norm2'],
    ['out_layers.3', 'conv2'],
    ['skip_connection', 'conv_shortcut'],
  ],
  'vae-resnet': [
    ['norm1', 'norm1'],
    ['conv1', 'conv1'],
    ['norm2', 'norm2'],
    ['conv2', 'conv2'],
    ['nin_shortcut', 'conv_shortcut'],
  ],
  'vae-attention': [
    ['norm', 'group_norm'],
    ['q', 'to_q'],
    ['k', 'to_k'],
    ['v', 'to_v'],
    ['proj_out', 'to_out.0'],
  ],
};

const LEAVES = new Set(['weight', 'bias']);

export interface PrefixRule {
  ldm: string;
  diffusers: string;
  part: Part;
}

export interface Converted {
  name: string;
  part: Part;
}

type Naming = 'ldm' | 'diffusers';

/** A two-way key map built from prefix rules. */
export class KeyMap {
  private readonly byNaming: Record<Naming, Map<string, PrefixRule>> = {
    ldm: new Map(),
    diffusers: new Map(),
  };

  constructor(readonly rules: readonly PrefixRule[]) {
    for (const r of rules) {
      this.byNaming.ldm.set(r.ldm, r);
      this.byNaming.diffusers.set(r.diffusers, r);
    }
  }

  /** An LDM key or module path in diffusers naming, or undefined where the layout has no such thing. */
  toDiffusers(path: string): Converted | undefined {
    return this.convert(path, 'ldm', 'diffusers');
  }

  /** A diffusers key or module path in LDM naming, or undefined where the layout has no such thing. */
  toLdm(path: string): Converted | undefined {
    return this.convert(path, 'diffusers', 'ldm');
  }

  /** The rule whose `from`-side prefix covers a path (longest match). */
  ruleFor(path: string, from: Naming): { rule: PrefixRule; rest: string } | undefined {
    const parts = path.split('.');
    for (let n = parts.length; n > 0; n--) {
      const rule = this.byNaming[from].get(parts.slice(0, n).join('.'));
      if (rule) return { rule, rest: parts.slice(n).join('.') };
    }
    return undefined;
  }

  private convert(path: string, from: Naming, to: Naming): Converted | undefined {
    const found = this.ruleFor(path, from);
    if (!found) return undefined;
    const { rule, rest } = found;
    const head = rule[to];
    if (rest === '') return { name: head, part: rule.part };
    if (rule.part === 'transformer') return { name: `${head}.${rest}`, part: rule.part };
    if (LEAVES.has(rest))
      return rule.part === 'plain' ? { name: `${head}.${rest}`, part: rule.part } : undefined;
    const [fi, ti] = from === 'ldm' ? [0, 1] : [1, 0];
    for (const pair of CHILDREN[rule.part]) {
      const child = pair[fi];
      if (rest === child || (rest.startsWith(`${child}.`) && LEAVES.has(rest.slice(child.length + 1)))) {
        return { name: `${head}.${pair[ti]}${rest.slice(child.length)}`, part: rule.part };
      }
    }
    return undefined;
  }
}

/** The SD 1.x UNet's prefix table: input_blocks/middle_block/output_blocks ↔ down/mid/up_blocks. */
export function unetKeyMap(layout: UNetLayout): KeyMap {
  const { levels, layersPerBlock: L } = layout;
  const rules: PrefixRule[] = [
    { ldm: 'time_embed.0', diffusers: 'time_embedding.linear_1', part: 'plain' },
    { ldm: 'time_embed.2', diffusers: 'time_embedding.linear_2', part: 'plain' },
    { ldm: 'input_blocks.0.0', diffusers: 'conv_in', part: 'plain' },
    { ldm: 'out.0', diffusers: 'conv_norm_out', part: 'plain' },
    { ldm: 'out.2', diffusers: 'conv_out', part: 'plain' },
    { ldm: 'middle_block.0', diffusers: 'mid_block.resnets.0', part: 'unet-resnet' },
    { ldm: 'middle_block.1', diffusers: 'mid_block.attentions.0', part: 'transformer' },
    { ldm: 'middle_block.2', diffusers: 'mid_block.resnets.1', part: 'unet-resnet' },
  ];
  for (let i = 0; i < levels; i++) {
    // each down level holds L resnets (+ attentions) and then, except the last, a downsampler
    for (let j = 0; j < L; j++) {
      const k = 1 + i * (L + 1) + j;
      rules.push({
        ldm: `input_blocks.${k}.0`,
        diffusers: `down_blocks.${i}.resnets.${j}`,
        part: 'unet-resnet',
      });
      if (layout.downAttention[i]) {
        rules.push({
          ldm: `input_blocks.${k}.1`,
          diffusers: `down_blocks.${i}.attentions.${j}`,
          part: 'transformer',
        });
      }
    }
    if (i < levels - 1) {
      rules.push({
        ldm: `input_blocks.${1 + i * (L + 1) + L}.0.op`,
        diffusers: `down_blocks.${i}.downsamplers.0.conv`,
        part: 'plain',
      });
    }
    // each up level holds L + 1 resnets (+ attentions); the upsampler follows the last of them
    for (let j = 0; j <= L; j++) {
      const k = i * (L + 1) + j;
      rules.push({
        ldm: `output_blocks.${k}.0`,
        diffusers: `up_blocks.${i}.resnets.${j}`,
        part: 'unet-resnet',
      });
      if (layout.upAttention[i]) {
        rules.push({
          ldm: `output_blocks.${k}.1`,
          diffusers: `up_blocks.${i}.attentions.${j}`,
          part: 'transformer',
        });
      }
    }
    if (i < levels - 1) {
      const slot = layout.upAttention[i] ? 2 : 1;
      rules.push({
        ldm: `output_blocks.${i * (L + 1) + L}.${slot}.conv`,
        diffusers: `up_blocks.${i}.upsamplers.0.conv`,
        part: 'plain',
      });
    }
  }
  return new KeyMap(rules);
}

/** The SD 1.x VAE's prefix table; the LDM decoder numbers its levels the other way round. */
export function vaeKeyMap(layout: VaeLayout): KeyMap {
  const { levels, layersPerBlock: L } = layout;
  const rules: PrefixRule[] = [
    { ldm: 'quant_conv', diffusers: 'quant_conv', part: 'plain' },
    { ldm: 'post_quant_conv', diffusers: 'post_quant_conv', part: 'plain' },
  ];
  for (const side of ['encoder', 'decoder']) {
    rules.push(
      { ldm: `${side}.conv_in`, diffusers: `${side}.conv_in`, part: 'plain' },
      { ldm: `${side}.conv_out`, diffusers: `${side}.conv_out`, part: 'plain' },
      { ldm: `${side}.norm_out`, diffusers: `${side}.conv_norm_out`, part: 'plain' },
      { ldm: `${side}.mid.block_1`, diffusers: `${side}.mid_block.resnets.0`, part: 'vae-resnet' },
      { ldm: `${side}.mid.attn_1`, diffusers: `${side}.mid_block.attentions.0`, part: 'vae-attention' },
      { ldm: `${side}.mid.block_2`, diffusers: `${side}.mid_block.resnets.1`, part: 'vae-resnet' },
    );
  }
  for (let i = 0; i < levels; i++) {
    for (let j = 0; j < L; j++) {
      rules.push({
        ldm: `encoder.down.${i}.block.${j}`,
        diffusers: `encoder.down_blocks.${i}.resnets.${j}`,
        part: 'vae-resnet',
      });
    }
    if (i < levels - 1) {
      rules.push({
        ldm: `encoder.down.${i}.downsample.conv`,
        diffusers: `encoder.down_blocks.${i}.downsamplers.0.conv`,
        part: 'plain',
      });
    }
    const up = levels - 1 - i;
    for (let j = 0; j <= L; j++) {
      rules.push({
        ldm: `decoder.up.${i}.block.${j}`,
        diffusers: `decoder.up_blocks.${up}.resnets.${j}`,
        part: 'vae-resnet',
      });
    }
    if (i > 0) {
      rules.push({
        ldm: `decoder.up.${i}.upsample.conv`,
        diffusers: `decoder.up_blocks.${up}.upsamplers.0.conv`,
        part: 'plain',
      });
    }
  }
  return new KeyMap(rules);
}

/** Distinct integer values of the path segment after `prefix` among the names. */
export function indicesAfter(names: Iterable<string>, prefix: string): number[] {
  const found = new Set<number>();
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const seg = name.slice(prefix.length).split('.', 1)[0];
    if (/^\d+$/.test(seg)) found.add(Number(seg));
  }
  return [...found].sort((a, b) => a - b);
}

/** Reads the UNet layout from LDM names (without the `model.diffusion_model.` prefix). */
export function unetLayoutFromLdm(names: ReadonlySet<string>): UNetLayout | string {
  const inputs = indicesAfter(names, 'input_blocks.');
  const downsamplers = inputs.filter((k) => names.has(`input_blocks.${k}.0.op.weight`));
  const levels = downsamplers.length + 1;
  if (inputs.length === 0) return 'it has no input_blocks';
  const L = (Math.max(...inputs) + 1) / levels - 1;
  if (!Number.isInteger(L) || L < 1) return `its ${inputs.length} input blocks do not form ${levels} levels`;
  const downAttention: boolean[] = [];
  const upAttention: boolean[] = [];
  for (let i = 0; i < levels; i++) {
    downAttention.push(names.has(`input_blocks.${1 + i * (L + 1)}.1.proj_in.weight`));
    upAttention.push(names.has(`output_blocks.${i * (L + 1)}.1.proj_in.weight`));
  }
  return { levels, layersPerBlock: L, downAttention, upAttention };
}

/** Reads the UNet layout from diffusers names. */
export function unetLayoutFromDiffusers(names: Iterable<string>): UNetLayout {
  const list = [...names];
  const levels = indicesAfter(list, 'down_blocks.').length;
  const layersPerBlock = indicesAfter(list, 'down_blocks.0.resnets.').length;
  const has = (prefix: string) => list.some((n) => n.startsWith(prefix));
  const downAttention: boolean[] = [];
  const upAttention: boolean[] = [];
  for (let i = 0; i < levels; i++) {
    downAttention.push(has(`down_blocks.${i}.attentions.`));
    upAttention.push(has(`up_blocks.${i}.attentions.`));
  }
  return { levels, layersPerBlock, downAttention, upAttention };
}

/** Reads the VAE layout from LDM names (without the `first_stage_model.` prefix). */
export function vaeLayoutFromLdm(names: Iterable<string>): VaeLayout {
  const list = [...names];
  return {
    levels: indicesAfter(list, 'decoder.up.').length,
    layersPerBlock: indicesAfter(list, 'decoder.up.0.block.').length - 1,
  };
}
