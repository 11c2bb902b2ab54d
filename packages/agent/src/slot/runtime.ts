// What the machine gives each slot's supervisor: its ports and auth, the address driver, where to log and report,
// the lease and disks it may use, and its limits. The supervisor's helpers (address-keeper.ts, failure-words.ts,
// recover-listener.ts) take the parts they need.
import type { Logger } from '@slotctl/shared';
import type { SlotCounters } from '../observe/metrics.js';
import type { VipDriver } from '../vip/driver.js';
import type { AuthConfig, Ports } from './render.js';

export interface SlotRuntime {
  ports: Ports;
  auth: AuthConfig;
  vip: VipDriver;
  log: Logger;
  /** Called after every change worth reporting. */
  onChange: () => void;
  /** Something an operator must hear about at once (an address conflict). */
  onEvent: (kind: string, message: string) => void;
  /** False while the machine holds no lease: a master must not start (or restart after a crash). */
  mayServeMaster: () => boolean;
  /** Where the machine's declared disks are mounted (the last desired state's): slot paths must lie under one. */
  disks: () => readonly string[];
  crashLimit: number;
  crashWindowMs: number;
  stopTimeoutMs: number;
  readyTimeoutMs: number;
  /** Where fences, repairs, restarts and cleanups are counted (/metrics); absent in tests and benchmarks that do not look. */
  metrics?: SlotCounters;
  /** Where each slot's cyrmaster writes its stdout and stderr (the agent's own directory); absent: nowhere. */
  outputDir?: string;
  /** The slot's Cyrus log lines of the cyrmaster `pid` started at `sinceMs` (logs/slot-logs.ts masterLines). */
  masterLines?: (pid: number, sinceMs: number) => Promise<string[]>;
}
