// The agent's memory across restarts: the last role and epoch it applied per slot, and the newest leadership term it
// has seen, in STATE_DIR/applied.json, written atomically. Both are fencing tokens (an epoch per store, a term for
// the coordinators), so they live together. An unreadable file stops the agent rather than letting it forget a newer
// epoch.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError, writeFileAtomic } from '@slotctl/shared';
import type { AppliedSlot, AppliedSlots } from './apply-plan.js';

interface AppliedFile {
  format: 1;
  machine: string;
  slots: Record<string, AppliedSlot>;
  /** Newest leadership term seen (absent before the HA coordinators, and while it is 0). */
  term?: number;
}

export class AppliedStore {
  readonly path: string;
  private slots: Record<string, AppliedSlot> = {};
  private newestTerm = 0;
  /** Writes one at a time: a term noted while a desired state is being saved must not be lost by a rename race. */
  private writing: Promise<unknown> = Promise.resolve();

  constructor(stateDir: string, private readonly machine: string) {
    this.path = join(stateDir, 'applied.json');
  }

  async load(): Promise<AppliedSlots> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return (this.slots = {});
      throw err;
    }
    let parsed: AppliedFile;
    try {
      parsed = JSON.parse(text) as AppliedFile;
    } catch (err) {
      throw new ConfigError(`agent state ${this.path} is not valid JSON (${(err as Error).message})`, {
        hint: 'it records the epochs this machine applied; restore it or, if the machine holds no master, remove it',
      });
    }
    if (parsed.format !== 1 || typeof parsed.slots !== 'object') throw new ConfigError(`agent state ${this.path} has an unknown format`);
    if (parsed.machine !== this.machine) {
      throw new ConfigError(`agent state ${this.path} belongs to machine "${parsed.machine}", not "${this.machine}"`, {
        hint: 'check --machine, or give each agent its own --state-dir',
      });
    }
    if (parsed.term !== undefined && !(Number.isSafeInteger(parsed.term) && parsed.term >= 0)) throw new ConfigError(`agent state ${this.path} has a term that is not a whole number`);
    this.newestTerm = parsed.term ?? 0;
    return (this.slots = parsed.slots);
  }

  current(): AppliedSlots {
    return this.slots;
  }

  /** The newest leadership term seen, by this agent or one before it on this machine (0: none). */
  get term(): number {
    return this.newestTerm;
  }

  async save(slots: Record<string, AppliedSlot>): Promise<void> {
    await this.write(() => slots);
  }

  /** A newer term seen: remembered at once, on disk when the write ends (a failed write is retried by the next one). */
  async saveTerm(term: number): Promise<void> {
    if (term <= this.newestTerm) return;
    this.newestTerm = term;
    await this.write(() => this.slots);
  }

  private write(slots: () => Record<string, AppliedSlot>): Promise<void> {
    const run = this.writing.then(async () => {
      const next = slots();
      const file: AppliedFile = { format: 1, machine: this.machine, slots: next, ...(this.newestTerm ? { term: this.newestTerm } : {}) };
      await writeFileAtomic(this.path, `${JSON.stringify(file, null, 2)}\n`, 0o600);
      this.slots = next;
    });
    this.writing = run.catch(() => undefined);
    return run;
  }
}
