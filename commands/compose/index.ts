// The /compose language: parse, check against the catalog, format, tweak, explain.

export { closestNames, completeName, editDistance } from './closest.ts';
export { compositionProblem } from './composable.ts';
export {
  applySuggestion,
  type BindingSource,
  type ComposeError,
  type ComposeErrorCode,
  type ComposeSource,
  type ParseResult,
  type ParseSuccess,
  pointAtError,
} from './errors.ts';
export { formatCompose } from './format.ts';
export { COMPOSE_EXAMPLES, composeErrorReply, helpReply } from './help.ts';
export { COMPOSE_OPTIONS, type ComposeOption } from './options.ts';
export { parseCompose } from './parse.ts';
export { indefiniteArticle, subjectList } from './prompt.ts';
export * from './request.ts';
export { foldLoraName, type LoraCatalog, type LoraRename, loraCatalog, resolveLoras } from './resolve.ts';
export { type ComposeTweak, type TweakError, type TweakResult, tweakRequest } from './tweak.ts';
export { NO_STYLE_VALUE, tweakChoices, tweakFromChoice, tweakLoraRow, tweakSlotRow } from './tweak-menu.ts';
export {
  decodeWeightFormId,
  readWeightForm,
  WEIGHT_FIELDS,
  weightForm,
  weightFormId,
} from './weight-form.ts';
