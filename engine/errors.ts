// How a caller tells the engine's failures apart: an input it cannot use (a request, or a model,
// LoRA, tokenizer or scheduler file), a cancelled composition, and anything else (a fault).

/** The engine's input cannot be used; the message says what to change. Not worth retrying. */
export class InputError extends Error {
  override name = 'InputError';
}

/** The caller's abort signal fired; the composition stopped between model runs. */
export class CancelledError extends Error {
  override name = 'CancelledError';
}
