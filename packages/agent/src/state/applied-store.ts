// The agent's memory across restarts: the last role and epoch it applied per slot, in STATE_DIR/applied.json,
// written atomically. An unreadable file stops the agent rather than letting it forget a newer epoch.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError, writeFileAtomic } from '@slotctl/shared';
import type { AppliedSlot, AppliedSlots } from './apply-plan.js';

interface AppliedFile {
  format: 1;
  machine: string;
  slots: Record<string, AppliedSlot>;
}

export class AppliedStore {
  readonly path: string;
  private slots: Record<string, AppliedSlot> = {};

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
    return (this.slots = parsed.slots);
  }

  current(): AppliedSlots {
    return this.slots;
  }

  async save(slots: Record<string, AppliedSlot>): Promise<void> {
    const file: AppliedFile = { format: 1, machine: this.machine, slots };
    await writeFileAtomic(this.path, `${JSON.stringify(file, null, 2)}\n`, 0o600);
    this.slots = slots;
  }
}
