// A second listener on a service IP, in a network namespace of the test's choosing: what a slot that wrongly
// believes itself master would be, as far as the kernel can tell. The tests that show the split-brain watch can fail
// start one. It binds without the address being on an interface (net.ipv4.ip_nonlocal_bind in its namespace, put back
// on stop), so it answers no ARP and takes no mail from the cluster.
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { execa } from 'execa';

// listen / close / cycle N (listen and close N times) on stdin; each answered with one line once done
const SCRIPT = `
const net = require('node:net');
const [ip, port] = process.argv.slice(1);
let server;
const listen = () => new Promise((ok, fail) => { server = net.createServer((c) => c.destroy()); server.once('error', fail); server.listen(Number(port), ip, ok); });
const close = () => new Promise((ok) => server.close(ok));
require('node:readline').createInterface({ input: process.stdin }).on('line', async (line) => {
  const [command, n] = line.split(' ');
  try {
    if (command === 'listen') await listen();
    else if (command === 'close') await close();
    else if (command === 'cycle') for (let i = 0; i < Number(n); i++) { await listen(); await close(); }
    process.stdout.write(command + '\\n');
  } catch (e) { process.stdout.write('error ' + e.message + '\\n'); }
});`;

export class RogueListener {
  private readonly lines: AsyncIterator<string>;

  private constructor(
    private readonly ns: string,
    private readonly child: ChildProcess,
  ) {
    this.lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  }

  /** A listener process for `ip`:`port` inside namespace `ns` (not listening yet). */
  static async start(ns: string, ip: string, port: number): Promise<RogueListener> {
    await execa('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv4.ip_nonlocal_bind=1']);
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', SCRIPT, ip, String(port)], { stdio: ['pipe', 'pipe', 'inherit'] });
    return new RogueListener(ns, child);
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Sends a command and waits for it to be done. */
  async do(command: 'listen' | 'close' | `cycle ${number}`): Promise<void> {
    this.child.stdin!.write(`${command}\n`);
    const answer = await this.lines.next();
    if (answer.done || answer.value !== command.split(' ')[0]) throw new Error(`rogue listener in ${this.ns}: ${answer.done ? 'ended' : answer.value}`);
  }

  /** Ends the process (by its PID) and puts the namespace's sysctl back. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      this.child.kill('SIGKILL');
      await exited;
    }
    await execa('ip', ['netns', 'exec', this.ns, 'sysctl', '-qw', 'net.ipv4.ip_nonlocal_bind=0'], { reject: false });
  }
}
