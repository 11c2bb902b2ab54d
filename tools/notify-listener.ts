// Tests only: a stand-in for PID 1's notify socket (tools/notify-listener.py, python3: Node has no unix datagram
// sockets), recording every message systemd-notify sends to it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';

const SCRIPT = fileURLToPath(new URL('./notify-listener.py', import.meta.url));

export class NotifyListener {
  /** Each message received, its assignments split: ['READY=1', 'STATUS=…']. */
  readonly messages: string[][] = [];

  private constructor(readonly socket: string, private readonly dir: string, private readonly child: ResultPromise) {}

  static async start(): Promise<NotifyListener> {
    const dir = mkdtempSync(join(tmpdir(), 'slotctl-notify-'));
    const socket = join(dir, 'notify.sock');
    const child = execa('python3', [SCRIPT, socket], { buffer: false, stdin: 'ignore', stderr: 'inherit' });
    child.catch(() => undefined);
    const listener = new NotifyListener(socket, dir, child);
    await new Promise<void>((resolve, reject) => {
      let rest = '';
      child.stdout!.setEncoding('utf8');
      child.stdout!.on('data', (chunk: string) => {
        rest += chunk;
        const lines = rest.split('\n');
        rest = lines.pop()!;
        for (const line of lines) {
          if (line === 'listening') resolve();
          else listener.messages.push(line.split('\\n').filter((f) => f !== ''));
        }
      });
      child.once('exit', (code) => reject(new Error(`notify listener exited (${code})`)));
    });
    return listener;
  }

  /** The messages carrying this assignment (for example 'WATCHDOG=1'). */
  with(field: string): string[][] {
    return this.messages.filter((m) => m.includes(field));
  }

  /** Resolves once a message with this assignment has arrived (or rejects after `ms`). */
  async waitFor(field: string, ms = 5000): Promise<string[]> {
    const until = Date.now() + ms;
    for (;;) {
      const m = this.messages.find((x) => x.includes(field));
      if (m) return m;
      if (Date.now() > until) throw new Error(`no ${field} within ${ms} ms; got ${JSON.stringify(this.messages)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** An environment under which systemd-notify talks to this listener. */
  env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return { ...process.env, NOTIFY_SOCKET: this.socket, ...extra };
  }

  stop(): void {
    this.child.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
