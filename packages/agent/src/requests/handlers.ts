// Every kind of slot request the agent carries out, in the order it runs them for one slot: what waits comes first
// (a replay before the check that compares its mailboxes, a recovery push before the slot may start), then what runs in
// the background.
import { check } from './check.js';
import { cleanup } from './cleanup.js';
import { confirm } from './confirm.js';
import type { RequestHandler } from './handler.js';
import { recoverPush } from './recover-push.js';
import { replay } from './replay.js';
import { seed } from './seed.js';

export const REQUEST_HANDLERS: readonly RequestHandler[] = [replay, check, recoverPush, seed, cleanup, confirm] as readonly RequestHandler[];
