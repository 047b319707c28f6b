// Node 20's threads (node:worker_threads) do not inherit `--import tsx`: register tsx here,
// then load the TypeScript module the creator named in workerData.entry.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.entry);
