// The key grammar of LoRA files: which tensor keys carry a down factor, an up factor or an
// alpha, in kohya (lora_unet_…/lora_te_… + .lora_down/.lora_up/.alpha) or diffusers/PEFT
// naming (lora_A/lora_B, older lora.down/up and attention-processor forms), and which keys
// reveal a LyCORIS variant or another base model that we refuse by name.

export type KeyStyle = 'kohya' | 'peft';
export type FactorRole = 'down' | 'up' | 'alpha';

export interface ParsedKey {
  style: KeyStyle;
  /** kohya: `lora_unet_down_blocks_0_…`; PEFT: the dotted module path with its prefix */
  module: string;
  role: FactorRole;
}

const SUFFIXES: readonly { suffix: string; role: FactorRole; style?: KeyStyle }[] = [
  { suffix: '.lora_down.weight', role: 'down', style: 'kohya' },
  { suffix: '.lora_up.weight', role: 'up', style: 'kohya' },
  { suffix: '.lora_A.weight', role: 'down', style: 'peft' },
  { suffix: '.lora_B.weight', role: 'up', style: 'peft' },
  { suffix: '.lora_linear_layer.down.weight', role: 'down', style: 'peft' },
  { suffix: '.lora_linear_layer.up.weight', role: 'up', style: 'peft' },
  { suffix: '.lora.down.weight', role: 'down', style: 'peft' },
  { suffix: '.lora.up.weight', role: 'up', style: 'peft' },
  { suffix: '.alpha', role: 'alpha' },
];

// diffusers' first LoRA format: attn1.processor.to_q_lora.down.weight targets attn1.to_q
const PROCESSOR_FORM = /^(.*)\.processor\.(to_q|to_k|to_v|to_out)_lora\.(down|up)\.weight$/;

const KOHYA_HEAD = /^lora_(unet|te\d*)_[A-Za-z0-9_]+$/;

/** Reads one tensor key; undefined where it is no LoRA factor we know. */
export function parseKey(key: string): ParsedKey | undefined {
  const processor = PROCESSOR_FORM.exec(key);
  if (processor) {
    const [, root, proj, dir] = processor;
    return {
      style: 'peft',
      module: `${root}.${proj === 'to_out' ? 'to_out.0' : proj}`,
      role: dir as 'down' | 'up',
    };
  }
  for (const { suffix, role, style } of SUFFIXES) {
    if (!key.endsWith(suffix)) continue;
    const module = key.slice(0, -suffix.length);
    const kohya = KOHYA_HEAD.test(module);
    if (style === 'kohya' && !kohya) return undefined;
    return { style: style ?? (kohya ? 'kohya' : 'peft'), module, role };
  }
  return undefined;
}

/** LyCORIS and other adapter types, recognised by their factor names. */
const UNSUPPORTED: readonly { kind: string; test: RegExp; advice?: string }[] = [
  { kind: 'LoHa (LyCORIS)', test: /\.hada_(w1_a|w1_b|w2_a|w2_b|t1|t2)$/ },
  { kind: 'LoKr (LyCORIS)', test: /\.lokr_(w1|w2|w1_a|w1_b|w2_a|w2_b|t1|t2)$/ },
  { kind: 'DoRA', test: /(\.dora_scale|\.lora_magnitude_vector(\.\w+)?)$/ },
  { kind: 'OFT/BOFT (LyCORIS)', test: /\.(oft_blocks|oft_diag|boft_\w+)$/ },
  { kind: 'IA3 (LyCORIS)', test: /\.on_input$/ },
  { kind: 'GLoRA (LyCORIS)', test: /^lora_\w+\.(a1|a2|b1|b2)\.weight$/ },
  { kind: 'full-difference (LyCORIS "diff")', test: /^lora_\w+\.diff(_b)?$/ },
  {
    kind: 'LoCon with a CP/Tucker middle factor (lora_mid)',
    test: /\.lora_mid\.weight$/,
    advice: 'use a LoRA/LoCon file trained without use_tucker/use_cp',
  },
];

/** The unsupported adapter type a key reveals, with what to use instead, or undefined. */
export function unsupportedKind(key: string): { kind: string; advice: string } | undefined {
  for (const u of UNSUPPORTED) {
    if (u.test.test(key)) return { kind: u.kind, advice: u.advice ?? 'use a LoRA/LoCon file' };
  }
  return undefined;
}

/** The other base model a key reveals by its name alone, or undefined. */
export function otherBaseByName(key: string): { base: string; evidence: string } | undefined {
  if (/^lora_te[12]_/.test(key))
    return { base: 'SDXL', evidence: 'it has two text encoders (lora_te1_/lora_te2_)' };
  if (key.startsWith('text_encoder_2.')) return { base: 'SDXL', evidence: 'it has a second text encoder' };
  if (/(^|[._])(double_blocks|single_blocks|single_transformer_blocks)[._]/.test(key)) {
    return { base: 'Flux', evidence: 'it targets Flux transformer blocks' };
  }
  if (/(^|[._])joint_blocks[._]/.test(key))
    return { base: 'SD 3', evidence: 'it targets MMDiT joint blocks' };
  return undefined;
}
