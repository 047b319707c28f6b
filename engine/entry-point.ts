// Whether a module is the script node (or tsx) was started with: Node 24's `import.meta.main`
// for Node 20. Comparing paths, not `file://` strings, keeps it true in folders whose names
// need escaping in a URL (a space) and when the script is reached through a symbolic link.

import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Call with the module's `import.meta.url`. */
export function isEntryPoint(moduleUrl: string, script: string | undefined = process.argv[1]): boolean {
  if (script === undefined || !moduleUrl.startsWith('file:')) return false;
  return canonical(resolve(script)) === canonical(fileURLToPath(moduleUrl));
}

function canonical(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}
