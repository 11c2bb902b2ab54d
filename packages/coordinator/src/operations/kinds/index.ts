// The registry: every operation kind, once. The runner finds an operation's kind here by its name.
import type { AnyKind } from '../framework/kind.js';
import { DRAIN, REBALANCE } from './drain.js';
import { FAILOVER } from './failover.js';
import { MOVE_REPLICA } from './move-replica.js';
import { RECOVERY } from './recovery.js';
import { EVACUATE, FANOUT, MACHINE_ADD } from './relocate.js';
import { REREPLICATE } from './rereplicate.js';
import { SWITCHOVER } from './switchover.js';

export const KINDS: readonly AnyKind[] = [SWITCHOVER, DRAIN, REBALANCE, FAILOVER, RECOVERY, REREPLICATE, MOVE_REPLICA, MACHINE_ADD, EVACUATE, FANOUT];

export const KIND_BY_NAME: ReadonlyMap<string, AnyKind> = new Map(KINDS.map((k) => [k.name, k]));
