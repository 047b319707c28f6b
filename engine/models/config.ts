// engine/world still imports the architecture from here; everything else reads ../architecture.ts.
export * from '../architecture.ts';
