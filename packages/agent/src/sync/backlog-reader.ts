// Reads a master's sync directory incrementally: files only grow (or are renamed/removed), so each file is read
// from where the last look stopped. Cheap enough to run on every change of a busy slot.
import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { MAILBOX_NAMES_REPORTED, isSyncLogName, mailboxOfLine, type BacklogSummary } from './backlog.js';

interface FileState {
  ino: number;
  offset: number;
  partial: string;
  mailboxes: Set<string>;
  firstChangeMs: number;
}

export class BacklogReader {
  private files = new Map<string, FileState>();

  constructor(readonly syncDir: string) {}

  /** Inodes of the log files now present: a vanished inode means the rolling client finished a batch. */
  inodes(): Set<number> {
    return new Set([...this.files.values()].map((f) => f.ino));
  }

  async read(now = Date.now()): Promise<BacklogSummary> {
    let names: string[];
    try {
      names = (await readdir(this.syncDir)).filter(isSyncLogName);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') names = [];
      else throw err;
    }
    const next = new Map<string, FileState>();
    let bytes = 0;
    for (const name of names) {
      const path = join(this.syncDir, name);
      let st;
      try {
        st = await stat(path);
      } catch {
        continue; // removed between readdir and stat
      }
      if (st.size === 0) continue;
      let state = [...this.files.values()].find((f) => f.ino === st.ino);
      if (!state || st.size < state.offset) {
        state = { ino: st.ino, offset: 0, partial: '', mailboxes: new Set(), firstChangeMs: st.birthtimeMs > 0 ? st.birthtimeMs : st.mtimeMs };
      }
      // sync_client renames and removes files while we look: a file gone meanwhile is simply not backlog any more
      if (st.size > state.offset && !(await this.readMore(path, state, st.size))) continue;
      next.set(name, state);
      bytes += st.size;
    }
    this.files = next;
    const mailboxes = new Set<string>();
    let oldest = Infinity;
    for (const f of next.values()) {
      for (const m of f.mailboxes) mailboxes.add(m);
      oldest = Math.min(oldest, f.firstChangeMs);
    }
    return { files: next.size, bytes, mailboxes: mailboxes.size, mailboxNames: [...mailboxes].sort().slice(0, MAILBOX_NAMES_REPORTED), oldestChangeAgeMs: next.size ? Math.max(0, Math.round(now - oldest)) : 0 };
  }

  /** Reads what was appended since the last look; false if the file is gone. */
  private async readMore(path: string, state: FileState, size: number): Promise<boolean> {
    let handle;
    try {
      handle = await open(path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
    try {
      const length = size - state.offset;
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await handle.read(buffer, 0, length, state.offset);
      state.offset += bytesRead;
      const text = state.partial + buffer.subarray(0, bytesRead).toString('utf8');
      const lines = text.split('\n');
      state.partial = lines.pop() ?? '';
      for (const line of lines) {
        const mailbox = mailboxOfLine(line);
        if (mailbox) state.mailboxes.add(mailbox);
      }
      return true;
    } finally {
      await handle.close();
    }
  }
}

/** Names one sync log file across renames (`log` → `log-run`): inode plus birth time, so a reused inode differs. */
export async function currentLogIdentity(syncDir: string): Promise<string | undefined> {
  try {
    const st = await stat(join(syncDir, 'log'), { bigint: true });
    return `${st.ino}:${st.birthtimeNs}`;
  } catch {
    return undefined;
  }
}

/** True while a sync log file with that identity is still there (not yet consumed by sync_client). */
export async function logIdentityPresent(syncDir: string, identity: string): Promise<boolean> {
  let names: string[];
  try {
    names = (await readdir(syncDir)).filter(isSyncLogName);
  } catch {
    return false;
  }
  for (const name of names) {
    try {
      const st = await stat(join(syncDir, name), { bigint: true });
      if (`${st.ino}:${st.birthtimeNs}` === identity) return true;
    } catch {
      // renamed or removed meanwhile
    }
  }
  return false;
}
