// The agent under systemd (deploy/systemd/slot-agent.service, Type=notify): READY=1 once start() has re-adopted its
// slots and serves, STATUS= as it changes, the watchdog's keep-alive from the supervision loop's own pass (a hung loop
// stops it and systemd restarts the agent — only the agent: KillMode=process), and the decision at SIGTERM whether
// the slots stop too. A plain `systemctl stop/restart` (a package upgrade) leaves them serving, to be re-adopted; a
// system shutdown stops them in order (ordered-stop.ts) instead of leaving them to the final SIGKILL.
import { lstatSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { SystemdNotifier, type Logger } from '@slotctl/shared';
import type { Agent } from './agent.js';

/** How long `systemctl is-system-running` may take before the stop goes on as a plain one. */
const SYSTEM_STATE_TIMEOUT_MS = 5000;

export interface SlotsAtStop {
  stopSlots: boolean;
  why: string;
}

/**
 * Whether the slots stop with the agent. Pure. `systemState` is what `systemctl is-system-running` printed
 * (undefined: not asked, or no answer); it is asked only under systemd (INVOCATION_ID or NOTIFY_SOCKET set).
 * Unknown means a plain stop: slots serving on is today's behaviour, and at a shutdown the final kill still ends them.
 */
export function slotsAtStop(input: { stopSlotsOnExit: boolean; underSystemd: boolean; systemState: string | undefined; stopRequested?: boolean }): SlotsAtStop {
  if (input.stopSlotsOnExit) return { stopSlots: true, why: 'agent stopping with --stop-slots-on-exit' };
  if (input.stopRequested) return { stopSlots: true, why: `agent stopping with ${STOP_REQUEST_FILE} in its state directory (the package is being removed): slots stopped in order` };
  if (!input.underSystemd) return { stopSlots: false, why: 'agent stopping; slots keep serving (a restarted agent re-adopts them)' };
  if (input.systemState === 'stopping') return { stopSlots: true, why: 'the system is shutting down: slots stopped in order (masters flushed to their replicas first)' };
  return { stopSlots: false, why: `service stopped or restarted (system ${input.systemState ?? 'state unknown'}); slots keep serving (a restarted agent re-adopts them)` };
}

/**
 * In the state directory: the package's prerm writes it before `systemctl stop slot-agent` on removal, so that the
 * slots stop in order with the agent instead of being left to a fence nobody renews. Root's directory (0700): only
 * root can place it; a link or anything but a root-owned regular file does not count.
 */
export const STOP_REQUEST_FILE = 'stop-slots-on-exit';

export function stopRequested(stateDir: string): boolean {
  try {
    const st = lstatSync(join(stateDir, STOP_REQUEST_FILE));
    return st.isFile() && st.uid === 0;
  } catch {
    return false;
  }
}

/** What systemd tells the service about itself: the notifier's, and no child's business. */
const SYSTEMD_VARIABLES = ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID', 'INVOCATION_ID'] as const;

/**
 * Takes systemd's variables out of `env` (process.env: what every child inherits) and returns them. The Cyrus
 * programs run in the agent's cgroup and NotifyAccess=all hears them: an imapd that found NOTIFY_SOCKET could tell
 * systemd a MAINPID or a watchdog trigger. (The socket's path is well known; not handing it out is the part we can do.)
 */
export function takeSystemdEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const taken: NodeJS.ProcessEnv = { PATH: env.PATH };
  for (const name of SYSTEMD_VARIABLES) {
    if (env[name] !== undefined) taken[name] = env[name];
    delete env[name];
  }
  return taken;
}

export function underSystemd(env: NodeJS.ProcessEnv): boolean {
  return Boolean(env.INVOCATION_ID || env.NOTIFY_SOCKET);
}

/** `systemctl is-system-running`'s word ("running", "degraded", "stopping"…); it exits non-zero for most of them. */
export async function systemState(): Promise<string | undefined> {
  const r = await execa('systemctl', ['is-system-running'], { reject: false, timeout: SYSTEM_STATE_TIMEOUT_MS, stdin: 'ignore' });
  return r.timedOut ? undefined : r.stdout.trim() || undefined;
}

export class AgentSystemd {
  private readonly notifier: SystemdNotifier;

  constructor(private readonly log: Logger, private readonly env: NodeJS.ProcessEnv = process.env) {
    this.notifier = new SystemdNotifier({ log, env });
  }

  /** Before agent.start(): keep-alives and STATUS from each pass of the supervision loop. */
  attach(agent: Agent): void {
    if (!this.notifier.enabled) return;
    if (this.notifier.keepAliveMs !== undefined) this.log.info({ keepAliveMs: this.notifier.keepAliveMs }, 'systemd watchdog on: keep-alives from the supervision loop');
    agent.onTick(() => {
      this.notifier.keepAlive();
      this.notifier.status(agent.statusLine());
    });
  }

  /** After agent.start(): its slots are re-adopted, its endpoints listen. */
  ready(agent: Agent): void {
    void this.notifier.ready(agent.statusLine());
  }

  /**
   * SIGTERM: decides whether the slots stop too, then stops the agent. `onTimeout` runs when a step overruns
   * (the forced exit): `timeoutMs` for a plain stop, and each step of stopping slots gets its own time, which
   * systemd hears too (EXTEND_TIMEOUT_USEC) so that it does not kill the agent in the middle of a flush.
   */
  async stop(agent: Agent, o: { stopSlotsOnExit: boolean; stateDir: string; timeoutMs: number; onTimeout: () => void }): Promise<void> {
    let timer = setTimeout(o.onTimeout, o.timeoutMs).unref();
    const systemd = underSystemd(this.env);
    const requested = stopRequested(o.stateDir);
    const decision = slotsAtStop({ stopSlotsOnExit: o.stopSlotsOnExit, stopRequested: requested, underSystemd: systemd, systemState: systemd && !o.stopSlotsOnExit && !requested ? await systemState().catch(() => undefined) : undefined });
    this.log.info(decision, decision.stopSlots ? 'stopping the agent and its slots' : 'stopping the agent; slots keep serving');
    void this.notifier.stopping(decision.why);
    await agent.stop({
      stopSlots: decision.stopSlots,
      why: decision.why,
      progress: (step, ms) => {
        clearTimeout(timer);
        timer = setTimeout(o.onTimeout, Math.max(ms, o.timeoutMs)).unref();
        this.log.info({ step, ms }, 'stopping slots');
        void this.notifier.extendTimeout(Math.max(ms, o.timeoutMs) + 5000, step);
      },
    });
    clearTimeout(timer);
  }
}
