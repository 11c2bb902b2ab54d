// The result of the last replay per slot, in STATE_DIR/replays.json (atomic writes). A desired state that asks again
// for the same operation id gets this answer instead of a second replay: replays are level-triggered too.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic, type ReplayReport } from '@slotctl/shared';

export type ReplayResults = Record<string, Required<ReplayReport>>;

export class ReplayStore {
  private readonly path: string;
  private results: ReplayResults = {};

  constructor(stateDir: string) {
    this.path = join(stateDir, 'replays.json');
  }

  async load(): Promise<void> {
    try {
      this.results = JSON.parse(await readFile(this.path, 'utf8')) as ReplayResults;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  get(slot: string): Required<ReplayReport> | undefined {
    return this.results[slot];
  }

  async save(slot: string, result: Required<ReplayReport>): Promise<void> {
    this.results = { ...this.results, [slot]: result };
    await writeFileAtomic(this.path, `${JSON.stringify(this.results, null, 2)}\n`, 0o600);
  }
}
