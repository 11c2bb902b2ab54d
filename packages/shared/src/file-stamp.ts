// What a file is now, as one string: device, inode, size, change and modification time. Any write or replacement of
// the file changes it, so a caller that remembers it knows whether the file is still as it left (or read) it.
import { lstatSync, statSync } from 'node:fs';

/** The file's stamp, '' when it cannot be looked at. `noFollow`: a link is not followed (and is not a file: ''). */
export function fileStamp(path: string, options: { noFollow?: boolean } = {}): string {
  try {
    const st = (options.noFollow ? lstatSync : statSync)(path, { bigint: true });
    if (options.noFollow && !st.isFile()) return '';
    return `${st.dev}:${st.ino}:${st.size}:${st.ctimeNs}:${st.mtimeNs}`;
  } catch {
    return '';
  }
}
