// bot/render — engine outputs → the pictures users see (sharp encodes; all drawing is plain JS on RGB bytes).
//
// Pixels
//   imageToRgb(chw: Float32Array, width, height): Uint8Array
//       VAE output [3, H, W] in [-1, 1] → RGB bytes (HWC), round(clamp(x/2 + 0.5, 0, 1)·255) in float32 with
//       ties to even, byte-identical to diffusers. decodedImage(...) wraps the result as an RgbImage.
//   RgbImage { width, height, data }    the picture type every renderer takes and draws.
//
// Encoding (every public renderer ends here, so every output respects maxBytes)
//   encodeImage(rgb, width, height, { maxBytes, prefer?: 'png' | 'webp' | 'jpeg' }): Promise<EncodedImage>
//       PNG if it fits, else WebP q90…60, then JPEG q85…45, then the lossy ladder on a downscaled copy until it
//       fits; never over maxBytes (≥ MIN_ENCODE_BYTES = 1 KiB). EncodedImage { bytes, format, mime, ext,
//       width, height, quality? }. Same input → same bytes (metadata stripped, no palette quantisation).
//   encodePng(image): Promise<Buffer>  lossless PNG, no limit.
//   Limits: DISCORD_DEFAULT_ATTACHMENT_BYTES (10 MiB), discordAttachmentLimit(interaction.attachment_size_limit),
//       SLACK_MAX_FILE_BYTES (1 GB), slackFileLimit(workspaceLimit?), DEFAULT_MAX_BYTES (= 10 MiB).
//
// Recipes (every picture of a composition carries what made it)
//   recipeFromSpec(spec, { command, model, loraSha256 }): Recipe; recipeText(recipe) → the PNG text entries:
//       `parameters` in AUTOMATIC1111's form (a1111Parameters; AutoV2 hashes) and `clora-bot`, our JSON with the
//       exact /compose command. encodeImage's `text` option writes them (tEXt, or iTXt beyond Latin-1); in a
//       WebP/JPEG fallback `parameters` goes to EXIF UserComment. readRecipe(bytes) reads them back for remix.
//   withPngText / readPngText: text chunks spliced in and read (sharp reads but cannot write them).
//
// Masks (MaskSet { rows, cols, loras: { name, mask: Uint8Array 0/1 }[], background? } at the attention resolution)
//   maskOverlay(image: RgbImage, masks, { palette?, opacity?, maxSide?, maxBytes? }): Promise<EncodedImage>
//       the image (downscaled to maxSide = 512) with a translucent fill and solid inner outline per LoRA,
//       diagonal stripes of the owners' colours where masks overlap, and a legend strip below
//       (swatch, name, share of the picture: shared cells split between their LoRAs, so the shares and the
//       background add up to 100%). Images under minSide = 256 are enlarged first. drawMaskOverlay(...) gives it.
//   ownershipShares(masks), percentagesSummingTo100(shares): those shares, and their rounding.
//   maskGrid(masks, { palette?, thumbSize?, includeBackground?, columns?, maxBytes? }): Promise<EncodedImage>
//       one framed thumbnail per mask (and the background), captioned with name and share.
//       drawMaskGrid / maskGridLayout expose the picture and where each tile sits.
//   LORA_PALETTE (Okabe–Ito), loraColor(i), maskCoverage(mask), backgroundMask(masks).
//
// Attention
//   attentionMapsSheet({ rows, cols, maps: { label, values: Float32Array }[] },
//                      { normalize?: 'per-map' | 'shared', tileSize?, columns?, maxBytes? }): Promise<EncodedImage>
//       viridis heat maps (VIRIDIS_STOPS, viridis(t)), nearest-upscaled, captioned with label and peak value,
//       plus a colour bar. drawAttentionMapsSheet / attentionSheetLayout as above.
//
// Progress
//   latentPreview(latent: Float32Array [4, h, w], h, w, { size?, prefer?, maxBytes?, projection? })
//       linear latent → RGB (SD15_LATENT_RGB, documented in latent.ts), smoothly upscaled to 256 px, WebP.
//   latentToRgb(latent, h, w, projection?): Uint8Array  the h × w RGB bytes.
//
// Text is drawn by sharp (Pango) in fonts shipped as npm packages (text.ts: Noto Sans SC, Noto Emoji), so labels
// show names in any script and emoji as typed, and do not depend on the host's fonts.

// The legend's rounding is the commands' (the result card's Masks field shows the same numbers).
export { percentagesSummingTo100 } from '../../commands/reply.ts';
export {
  type AttentionMapSet,
  type AttentionSheetLayout,
  type AttentionSheetOptions,
  attentionMapsSheet,
  attentionSheetLayout,
  drawAttentionMapsSheet,
  type TokenAttentionMap,
} from './attention.ts';
export { VIRIDIS_STOPS, viridis } from './colormap.ts';
export {
  type EncodedImage,
  type EncodeOptions,
  encodeImage,
  encodePng,
  encodeRgbImage,
  type ImageFormat,
  resizeImage,
} from './encode.ts';
export { readUserComment } from './exif.ts';
export { decodedImage, imageToRgb, vaeValueToByte } from './image.ts';
export {
  type LatentPreviewOptions,
  type LatentRgbProjection,
  latentPreview,
  latentToRgb,
  SD15_LATENT_RGB,
} from './latent.ts';
export {
  DEFAULT_MAX_BYTES,
  DISCORD_DEFAULT_ATTACHMENT_BYTES,
  discordAttachmentLimit,
  MIN_ENCODE_BYTES,
  SLACK_MAX_FILE_BYTES,
  slackFileLimit,
} from './limits.ts';
export {
  backgroundMask,
  DEFAULT_OVERLAY_OPACITY,
  drawMaskGrid,
  drawMaskOverlay,
  type LoraMask,
  type MaskGridLayout,
  type MaskGridOptions,
  type MaskOverlayOptions,
  type MaskSet,
  type MaskStyle,
  maskCoverage,
  maskGrid,
  maskGridLayout,
  maskLegend,
  maskOverlay,
  ownershipShares,
  type RenderBudget,
} from './masks.ts';
export { BACKGROUND_SWATCH, LORA_PALETTE, loraColor } from './palette.ts';
export { isPng, type PngTextEntry, readPngText, withPngText } from './png-text.ts';
export type { Rgb, RgbImage } from './raster.ts';
export {
  a1111Parameters,
  autoV2,
  GENERATOR,
  PARAMETERS_KEYWORD,
  RECIPE_KEYWORD,
  type Recipe,
  type RecipeLora,
  type RecipeReading,
  readRecipe,
  recipeFromSpec,
  recipeText,
} from './recipe.ts';
