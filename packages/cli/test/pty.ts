import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';

/**
 * A shell command running in a pseudo-terminal (util-linux `script`), as in a terminal window: `ctrlC()` types the
 * terminal's interrupt character, which the kernel turns into SIGINT for the whole foreground process group.
 */
export class PtyCommand {
  readonly process: ChildProcessWithoutNullStreams;
  output = '';
  readonly exited: Promise<number | null>;

  constructor(command: string, options: { cwd: string; env?: Record<string, string> }) {
    // -e: exit with the command's status; -f: flush output at once; -q: no start/done lines.
    // SHELL fixed: `script` runs `$SHELL -c command`, and shells differ in what they do with a signal meant for the command.
    const env = { ...process.env, SHELL: '/bin/sh', ...options.env };
    this.process = spawn('script', ['-qfec', command, '/dev/null'], { cwd: options.cwd, env, stdio: 'pipe' });
    this.process.stdout.on('data', (d) => (this.output += d));
    this.process.stderr.on('data', (d) => (this.output += d));
    this.exited = new Promise((done) => this.process.on('exit', (code) => done(code)));
  }

  ctrlC(): void {
    this.process.stdin.write('\x03');
  }

  /** The process group of the command in the terminal (`script` makes its child a session leader). */
  group(): number {
    const pid = this.process.pid!;
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/);
    return Number(children[0]);
  }

  /** Every process of the terminal's foreground group (npm, sh, node). */
  groupMembers(): number[] {
    const group = this.group();
    return readdirSync('/proc')
      .filter((name) => /^\d+$/.test(name))
      .filter((pid) => {
        try {
          // Fields after the command name: state ppid pgrp …
          return Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[2]) === group;
        } catch {
          return false;
        }
      })
      .map(Number);
  }

  /** Closes the terminal as a dropped ssh connection does: the kernel sends SIGHUP to the session. */
  hangUp(): void {
    this.process.kill('SIGKILL');
  }
}

/** Resolves once `file` exists (training has visibly started). */
export async function waitForFile(file: string, timeoutMs = 60_000): Promise<void> {
  const started = Date.now();
  while (!existsSync(file)) {
    if (Date.now() - started > timeoutMs) throw new Error(`${file} did not appear within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Resolves once none of `pids` runs any more (a zombie counts as ended). */
export async function waitForExit(pids: number[], timeoutMs = 30_000): Promise<void> {
  const running = (pid: number) => {
    try {
      return !readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].startsWith('Z');
    } catch {
      return false;
    }
  };
  const started = Date.now();
  while (pids.some(running)) {
    if (Date.now() - started > timeoutMs) throw new Error(`processes ${pids.filter(running).join(', ')} still run after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
