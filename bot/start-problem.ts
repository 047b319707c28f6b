// A reason the bot (or a worker) cannot start that the operator can fix from its message: a
// setting that points at the wrong thing, a busy port, a refused token. Printed as one line,
// without a stack trace; anything else is a bug and keeps its stack.

export class StartProblem extends Error {
  override name = 'StartProblem';
}
