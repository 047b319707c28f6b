// Worker threads of Node 20 do not inherit `--import tsx`: register tsx here, then load the
// TypeScript entry.
import { register } from 'tsx/esm/api';

register();
await import('./engine-thread.ts');
