// Where the coordinator's state lives: the SQLite file (one coordinator, the default) or etcd (several
// coordinators, one leader: db/etcd/). Either way the rest of the coordinator sees `Storage`, synchronous; what a
// backend adds is `durable`: nothing leaves the coordinator (a desired state to an agent, a reply to slotctl) before
// the state it shows is durable, so no one ever acts on a change that a crash could undo.
import type { Logger } from '@slotctl/shared';
import { openDatabase } from './open.js';
import { sqliteStorage } from './sqlite/index.js';
import type { Storage } from './storage.js';

export interface Backend {
  readonly storage: Storage;
  /**
   * Resolves once every change made so far is durable; rejects when it never will be (the etcd backend's leadership
   * is lost). SQLite commits synchronously: at once.
   */
  durable(): Promise<void>;
  close(): void;
  /** For logs and status: "sqlite /var/lib/slotctl/coordinator.db". */
  readonly describe: string;
}

export function sqliteBackend(path: string, log?: Logger): Backend {
  const db = openDatabase(path, log);
  const done = Promise.resolve();
  return { storage: sqliteStorage(db), durable: () => done, close: () => db.close(), describe: `sqlite ${path}` };
}
