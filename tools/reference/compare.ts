// Comparing engine outputs with reference tensors, with the tolerances a fixture's
// cases.json suggests.

export interface Check {
  case: string;
  output: string;
  maxAbs: number;
  /** max abs error ÷ max abs reference value */
  maxRel: number;
  tolerance: number;
  /** discrete outputs (ids, masks) must match exactly */
  exact: boolean;
  pass: boolean;
  note?: string;
}

interface ToleranceEntry {
  suggested_atol?: number;
  max_abs_f32_vs_f64?: number;
}

/** README: "suggested atol = 10x the observed float32 deviation". */
export function suggestedAtol(entry: ToleranceEntry | undefined): number | undefined {
  if (!entry || typeof entry !== 'object') return undefined;
  if (typeof entry.suggested_atol === 'number') return entry.suggested_atol;
  if (typeof entry.max_abs_f32_vs_f64 === 'number') return 10 * entry.max_abs_f32_vs_f64;
  return undefined;
}

export class Tolerances {
  constructor(
    private readonly table: Record<string, ToleranceEntry>,
    /** factor for long chains (the README allows 3–10× for the CLoRA run and 50-step traces) */
    private readonly factor = 1,
  ) {}

  /** The output's own tolerance, else the largest one in the case. */
  for(output: string): { atol: number; note?: string } {
    const own = suggestedAtol(this.table[output]);
    const note = this.factor !== 1 ? `×${this.factor} long chain` : undefined;
    if (own !== undefined) return { atol: own * this.factor, note };
    const all = Object.values(this.table)
      .map(suggestedAtol)
      .filter((v): v is number => v !== undefined);
    if (all.length === 0) throw new Error(`no tolerance for '${output}' and none in its case`);
    return { atol: Math.max(...all) * this.factor, note: note ? `${note}, case default` : 'case default' };
  }
}

export function compareArrays(
  caseId: string,
  output: string,
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tolerance: { atol: number; note?: string } | 'exact',
): Check {
  const exact = tolerance === 'exact';
  const atol = exact ? 0 : tolerance.atol;
  if (actual.length !== expected.length) {
    return {
      case: caseId,
      output,
      maxAbs: Number.POSITIVE_INFINITY,
      maxRel: Number.POSITIVE_INFINITY,
      tolerance: atol,
      exact,
      pass: false,
      note: `length ${actual.length}, expected ${expected.length}`,
    };
  }
  let maxAbs = 0;
  let maxRef = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i];
    const d = Math.abs(actual[i] - e);
    maxAbs = Number.isNaN(d) ? Number.POSITIVE_INFINITY : Math.max(maxAbs, d);
    maxRef = Math.max(maxRef, Math.abs(e));
  }
  return {
    case: caseId,
    output,
    maxAbs,
    maxRel: maxRef > 0 ? maxAbs / maxRef : maxAbs,
    tolerance: atol,
    exact,
    pass: exact ? maxAbs === 0 : maxAbs <= atol,
    note: exact ? undefined : tolerance.note,
  };
}

/** Equality of structured values (token lists, word positions) as one exact check. */
export function compareValues(caseId: string, output: string, actual: unknown, expected: unknown): Check {
  const same = JSON.stringify(actual) === JSON.stringify(expected);
  return {
    case: caseId,
    output,
    maxAbs: same ? 0 : 1,
    maxRel: same ? 0 : 1,
    tolerance: 0,
    exact: true,
    pass: same,
    note: same
      ? undefined
      : `got ${JSON.stringify(actual).slice(0, 120)}, expected ${JSON.stringify(expected).slice(0, 120)}`,
  };
}
