// A file holding a secret (the replication password): readable by its owner only, owned by the agent's user, and one
// line of plain characters. Anything else is refused at start with what is wrong and how to fix it, never guessed at:
// a password readable by others is already lost, and a stray \r or second line would end up in imapd.conf and sasldb
// as part of it. The refusal names the file and the problem, never the content.
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { SecretFileError } from '@slotctl/shared';

const CONTROL = /[\u0000-\u001f\u007f]/;

const describeChar = (c: string) => ({ '\r': '\\r (a carriage return: written on Windows?)', '\n': 'a second line', '\t': 'a tab', '\0': 'a NUL byte' })[c] ?? `control character 0x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;

/** Pure: why this content is not a usable secret; undefined when it is (one trailing newline allowed). */
export function secretContentProblem(content: string): string | undefined {
  const secret = content.endsWith('\n') ? content.slice(0, -1) : content;
  if (secret === '') return 'is empty';
  const m = CONTROL.exec(secret);
  if (m) return `holds ${describeChar(m[0])} at character ${m.index + 1}: only one line, with at most one newline after it, is allowed`;
  return undefined;
}

/** Reads the secret in `path`; `what` names where it came from (a flag) in the refusal. */
export function readSecretFile(path: string, what: string): string {
  const fixContent = `write it on one line: printf '%s\\n' 'PASSWORD' > ${path}; chmod 600 ${path}`;
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new SecretFileError(`${what} ${path} cannot be read: ${(err as Error).message}`, { hint: `create it readable by root only: ${fixContent}` });
  }
  try {
    // the file opened is the file checked: no window for a swap between the check and the read
    const s = fstatSync(fd);
    if (!s.isFile()) throw new SecretFileError(`${what} ${path} is not a regular file`, { hint: fixContent });
    const mode = s.mode & 0o7777;
    if (mode & 0o077) {
      throw new SecretFileError(`${what} ${path} has mode 0${mode.toString(8)}: group or others may read the replication password`, { hint: `chmod 600 ${path} (and change the password if others could read it)` });
    }
    const uid = process.getuid?.();
    if (uid !== undefined && s.uid !== uid) {
      throw new SecretFileError(`${what} ${path} is owned by uid ${s.uid}, not by the agent's user (uid ${uid}): its owner could change the password under the agent`, { hint: `chown ${uid === 0 ? 'root' : uid} ${path}` });
    }
    const content = readFileSync(fd, 'utf8');
    const problem = secretContentProblem(content);
    if (problem) throw new SecretFileError(`${what} ${path} ${problem}`, { hint: fixContent });
    return content.endsWith('\n') ? content.slice(0, -1) : content;
  } finally {
    closeSync(fd);
  }
}
