// Tensor dimensions: a static size, or a symbolic one such as `B`, `H/2` or `H*W/64`.
// A symbolic dimension is a monomial (a rational coefficient times a product of named
// symbols), which is all that SD's shapes need: batch, height and width multiply and halve.

export class Sym {
  private constructor(
    readonly coef: number,
    /** symbol name → power, sorted by name; never empty */
    readonly factors: ReadonlyArray<readonly [string, number]>,
  ) {}

  static named(name: string): Sym {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      throw new TypeError(`symbolic dimension name '${name}' must be an identifier such as B or H`);
    }
    return new Sym(1, [[name, 1]]);
  }

  /** Builds a normalised dimension; collapses to a number when no symbol remains. */
  static make(coef: number, factors: Map<string, number>): Dim {
    const kept = [...factors.entries()].filter(([, p]) => p !== 0).sort(([a], [b]) => (a < b ? -1 : 1));
    if (kept.length === 0) {
      if (!Number.isInteger(coef)) throw new RangeError(`dimension ${coef} is not a whole number`);
      return coef;
    }
    return new Sym(coef, kept);
  }

  toString(): string {
    const num: string[] = [];
    const den: string[] = [];
    for (const [name, p] of this.factors) {
      const part = Math.abs(p) === 1 ? name : `${name}^${Math.abs(p)}`;
      (p > 0 ? num : den).push(part);
    }
    // Coefficients are ratios of small integers (sizes halve and double).
    const [n, d] = ratio(this.coef);
    if (n !== 1) num.unshift(String(n));
    if (d !== 1) den.push(String(d));
    const top = num.length ? num.join('*') : '1';
    return den.length ? `${top}/${den.join('/')}` : top;
  }
}

export type Dim = number | Sym;

export function isStatic(d: Dim): d is number {
  return typeof d === 'number';
}

export function allStatic(dims: readonly Dim[]): dims is number[] {
  return dims.every(isStatic);
}

export function dimEq(a: Dim, b: Dim): boolean {
  if (typeof a === 'number' || typeof b === 'number') return a === b;
  return a.toString() === b.toString();
}

export function shapeEq(a: readonly Dim[], b: readonly Dim[]): boolean {
  return a.length === b.length && a.every((d, i) => dimEq(d, b[i]));
}

function parts(d: Dim): [number, Map<string, number>] {
  if (typeof d === 'number') return [d, new Map()];
  return [d.coef, new Map(d.factors)];
}

export function dimMul(a: Dim, b: Dim): Dim {
  const [ca, fa] = parts(a);
  const [cb, fb] = parts(b);
  for (const [k, p] of fb) fa.set(k, (fa.get(k) ?? 0) + p);
  return Sym.make(ca * cb, fa);
}

/** Exact division; a static result must be whole, a symbolic one is taken as exact. */
export function dimDiv(a: Dim, b: Dim): Dim {
  const [cb, fb] = parts(b);
  if (cb === 0) throw new RangeError('division of a dimension by zero');
  const inv = new Map<string, number>();
  for (const [k, p] of fb) inv.set(k, -p);
  const [ca, fa] = parts(a);
  for (const [k, p] of inv) fa.set(k, (fa.get(k) ?? 0) + p);
  const coef = ca / cb;
  if (fa.size === 0 || [...fa.values()].every((p) => p === 0)) {
    if (!Number.isInteger(coef))
      throw new RangeError(`dimension ${dimStr(a)} is not divisible by ${dimStr(b)}`);
  }
  return Sym.make(coef, fa);
}

export function dimProduct(dims: readonly Dim[]): Dim {
  return dims.reduce<Dim>((acc, d) => dimMul(acc, d), 1);
}

export function dimStr(d: Dim): string {
  return typeof d === 'number' ? String(d) : d.toString();
}

export function shapeStr(dims: readonly Dim[]): string {
  return `[${dims.map(dimStr).join(',')}]`;
}

/** Symbol names a dimension depends on. */
export function symbolsOf(d: Dim): string[] {
  return typeof d === 'number' ? [] : d.factors.map(([k]) => k);
}

/** Value of a dimension once its symbols are bound. */
export function evalDim(d: Dim, bindings: ReadonlyMap<string, number>): number | undefined {
  if (typeof d === 'number') return d;
  let v = d.coef;
  for (const [k, p] of d.factors) {
    const b = bindings.get(k);
    if (b === undefined) return undefined;
    v *= b ** p;
  }
  return v;
}

/** Accepts `4`, `'B'` or a Sym wherever a dimension is written by hand. */
export function toDim(d: number | string | Sym): Dim {
  if (typeof d === 'string') return Sym.named(d);
  if (typeof d === 'number' && !(Number.isInteger(d) && d >= 0)) {
    throw new RangeError(`dimension ${d} must be a whole number ≥ 0`);
  }
  return d;
}

function ratio(x: number): [number, number] {
  for (let d = 1; d <= 1 << 20; d *= 2) {
    if (Number.isInteger(x * d)) return [x * d, d];
  }
  for (let d = 3; d < 1000; d++) {
    if (Number.isInteger(Math.round(x * d * 1e9) / 1e9)) return [Math.round(x * d), d];
  }
  return [x, 1];
}

/** Sum of two dimensions; symbolic ones must be multiples of the same symbols (B + B = 2*B). */
export function dimAdd(a: Dim, b: Dim): Dim {
  return combine(a, b, 1, 'added to');
}

export function dimSub(a: Dim, b: Dim): Dim {
  return combine(a, b, -1, 'subtracted from');
}

function combine(a: Dim, b: Dim, sign: 1 | -1, verb: string): Dim {
  if (typeof a === 'number' && typeof b === 'number') return a + sign * b;
  if (typeof a === 'number' && a === 0) return sign === 1 ? b : dimMul(b, -1);
  if (typeof b === 'number' && b === 0) return a;
  const [ca, fa] = parts(a);
  const [cb, fb] = parts(b);
  const key = (f: Map<string, number>) => JSON.stringify([...f.entries()].sort());
  if (key(fa) !== key(fb)) {
    throw new RangeError(`dimension ${dimStr(b)} cannot be ${verb} ${dimStr(a)} symbolically`);
  }
  return Sym.make(ca + sign * cb, fa);
}
