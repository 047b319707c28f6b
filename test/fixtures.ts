// Where the tiny SD 1.5 fixtures live: CLORA_FIXTURES, else ../shared/fixtures/tiny-sd15
// beside the repository; the non-square set sits beside the square one.
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('..', import.meta.url));

export function fixtureDir(): string {
  const dir = process.env.CLORA_FIXTURES ?? resolve(repoRoot, '..', 'shared', 'fixtures', 'tiny-sd15');
  if (!existsSync(join(dir, 'reference', 'cases.json'))) {
    throw new Error(`tiny-sd15 fixtures not found at ${dir}; set CLORA_FIXTURES to the fixture directory`);
  }
  return dir;
}

/** tiny-sd15-nonsquare: the size-dependent cases at a 32×48 latent, on the same model. */
export function nonsquareFixtureDir(): string {
  const dir = resolve(fixtureDir(), '..', 'tiny-sd15-nonsquare');
  if (!existsSync(join(dir, 'reference', 'cases.json'))) {
    throw new Error(`tiny-sd15-nonsquare fixtures not found at ${dir}; they belong beside tiny-sd15`);
  }
  return dir;
}

/**
 * A fresh LoRA folder under `parent` holding the fixture's LoRAs (i) and (ii) under the
 * names the tests use: tabby.safetensors (trigger "sks") and plush.safetensors ("ohwx").
 */
export function fixtureLoraFolder(parent: string): string {
  const dir = join(parent, 'loras');
  mkdirSync(dir, { recursive: true });
  copyFileSync(
    join(fixtureDir(), 'loras', 'lora_i_kohya_unet_te.safetensors'),
    join(dir, 'tabby.safetensors'),
  );
  copyFileSync(
    join(fixtureDir(), 'loras', 'lora_ii_kohya_unet_attn_ff.safetensors'),
    join(dir, 'plush.safetensors'),
  );
  return dir;
}
