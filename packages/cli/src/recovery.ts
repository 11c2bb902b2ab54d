// Recovery after a disaster failover, which `slotctl store recover` and `slotctl machine recover` share: the same
// help text and the same request, for one store or for every store of a returned machine.
import { parseDuration } from '@slotctl/shared';
import { printJson, type WithAdmin } from './context.js';
import { followAll, printPreview } from './follow.js';

export const RECOVER_HELP =
  'The returned old master (stopped since the failover, its leftover sync logs in quarantine) pushes each mailbox ' +
  'those logs name to the new master (sync_client -m: creates what is missing, merges the rest; nothing on the new ' +
  'master is deleted or replaced), then every message of those mailboxes is looked for on the new master by GUID. ' +
  'When all are found the at-risk record closes and the old master starts as replica; otherwise it stays stopped and ' +
  'the record lists each mailbox with what went wrong.';

export interface RecoverOptions {
  dryRun?: boolean;
  wait: boolean;
  timeout: string;
  json?: boolean;
}

export function recoverAction(which: 'store' | 'machine', withAdmin: WithAdmin) {
  return async (name: string, opts: RecoverOptions) => {
    await withAdmin(async (a) => {
      const reply = await a.recover({ store: which === 'store' ? name : '', machine: which === 'machine' ? name : '', dryRun: !!opts.dryRun });
      if (reply.dryRun || reply.operations.length === 0) return printPreview(`recovery of ${which} ${name}${reply.dryRun ? ' (dry run)' : ''}`, reply, !!opts.json, { [which]: name });
      for (const p of reply.problems) process.stderr.write(`slotctl: ${p}\n`);
      if (!opts.wait) {
        if (opts.json) printJson(reply.operations);
        else for (const op of reply.operations) process.stdout.write(`recovery of ${op.store} started: ${op.id}\n`);
        return;
      }
      await followAll(a, reply.operations, !!opts.json, parseDuration(opts.timeout, '--timeout'));
    });
  };
}
