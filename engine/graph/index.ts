// The graph layer's public surface: build a graph, differentiate it, compile and run it.

export { grad } from './autodiff.ts';
export { type Dim, dimStr, Sym, shapeStr } from './dim.ts';
export { type DType, float16BitsToFloat32, float32ToFloat16Bits, isFloat } from './dtype.ts';
export {
  type EmitOptions,
  type EmittedBundle,
  type EmittedModel,
  emitBundle,
  emitModel,
  type ValueSpec,
} from './emit.ts';
export { Graph, GraphError, type OpDef, Tensor, type WeightData } from './graph.ts';
export * from './ops/attention.ts';
export * from './ops/chunked-attention.ts';
export * from './ops/conv.ts';
export * from './ops/elementwise.ts';
export * from './ops/fused-attention.ts';
export * from './ops/matmul.ts';
export * from './ops/norm.ts';
export * from './ops/reduce.ts';
export * from './ops/shape.ts';
export {
  type CompiledModel,
  type CompileStats,
  compile,
  compileBundle,
  type HostTensor,
  hostTensor,
  type OptimizationLevel,
  type Provider,
  type RunnerOptions,
} from './runner.ts';
