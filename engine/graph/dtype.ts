// Element types of the IR, with their ONNX codes and host array types.

export type DType = 'float32' | 'float16' | 'float64' | 'int64' | 'int32' | 'bool';

export const DTYPES: readonly DType[] = ['float32', 'float16', 'float64', 'int64', 'int32', 'bool'];

interface DTypeInfo {
  onnx: number; // onnx.TensorProto.DataType
  bytes: number;
  float: boolean;
}

const INFO: Record<DType, DTypeInfo> = {
  float32: { onnx: 1, bytes: 4, float: true },
  float16: { onnx: 10, bytes: 2, float: true },
  float64: { onnx: 11, bytes: 8, float: true },
  int64: { onnx: 7, bytes: 8, float: false },
  int32: { onnx: 6, bytes: 4, float: false },
  bool: { onnx: 9, bytes: 1, float: false },
};

export function isDType(value: unknown): value is DType {
  return typeof value === 'string' && value in INFO;
}

export function assertDType(value: unknown, where: string): DType {
  if (!isDType(value)) {
    throw new TypeError(`${where}: unknown dtype ${JSON.stringify(value)}; use one of ${DTYPES.join(', ')}`);
  }
  return value;
}

export function onnxDataType(dtype: DType): number {
  return INFO[dtype].onnx;
}

export function bytesPerElement(dtype: DType): number {
  return INFO[dtype].bytes;
}

export function isFloat(dtype: DType): boolean {
  return INFO[dtype].float;
}

/** The onnxruntime-node tensor type name for a dtype. */
export function ortType(dtype: DType): 'float32' | 'float16' | 'float64' | 'int64' | 'int32' | 'bool' {
  return dtype;
}

/** `n` zeros of a dtype in the typed array onnxruntime-node takes for it (float16 as bits, bool as bytes). */
export function zeros(
  dtype: DType,
  n: number,
): Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Uint16Array {
  switch (dtype) {
    case 'float32':
      return new Float32Array(n);
    case 'float64':
      return new Float64Array(n);
    case 'int32':
      return new Int32Array(n);
    case 'int64':
      return new BigInt64Array(n);
    case 'bool':
      return new Uint8Array(n);
    case 'float16':
      return new Uint16Array(n);
  }
}

/** Encodes numbers as the raw little-endian bytes of a dtype (float16 rounds to nearest even). */
export function encodeValues(values: ArrayLike<number | bigint>, dtype: DType): Uint8Array {
  const n = values.length;
  switch (dtype) {
    case 'float32':
      return bytesOf(Float32Array.from(values as ArrayLike<number>));
    case 'float64':
      return bytesOf(Float64Array.from(values as ArrayLike<number>));
    case 'int32':
      return bytesOf(Int32Array.from(values as ArrayLike<number>));
    case 'int64': {
      const out = new BigInt64Array(n);
      for (let i = 0; i < n; i++) out[i] = BigInt(values[i] as number | bigint);
      return bytesOf(out);
    }
    case 'bool': {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) out[i] = values[i] ? 1 : 0;
      return out;
    }
    case 'float16': {
      const out = new Uint16Array(n);
      for (let i = 0; i < n; i++) out[i] = float32ToFloat16Bits(Number(values[i]));
      return bytesOf(out);
    }
  }
}

export function bytesOf(array: ArrayBufferView): Uint8Array {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE binary32 → binary16 bits, round to nearest even, with subnormals, inf and NaN. */
export function float32ToFloat16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half++;
  e = half >>> 10;
  return sign | half;
}

export function float16BitsToFloat32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}
