import { syncRun, type SyncResult } from '@gantry/monitor';
import type { Command } from 'commander';

/** `gantry wandb sync <run-dir>`: sends what a run's W&B spool still holds (after a run without network). */
export function registerWandb(program: Command): Command {
  const wandb = program.command('wandb').description('Weights & Biases utilities (settings from WANDB_API_KEY, WANDB_BASE_URL)');
  wandb
    .command('sync')
    .description("send a run folder's spooled W&B data (history, summary, images, completion) to the server")
    .argument('<run-dir>', 'run folder that holds wandb-spool/')
    .option('--base-url <url>', 'W&B server (default: WANDB_BASE_URL, else the one the run was started with)')
    .option('--attempts <n>', 'consecutive failed attempts before giving up', (v) => Number.parseInt(v, 10), 6)
    .action(async (runDir: string, opts: { baseUrl?: string; attempts: number }) => {
      let result: SyncResult;
      try {
        result = await syncRun(runDir, { baseUrl: opts.baseUrl, maxAttempts: opts.attempts });
      } catch (error) {
        console.error(`gantry wandb sync: ${error instanceof Error ? error.message : String(error)}`);
        process.exitCode = 1;
        return;
      }
      const where = `${result.entity ?? '?'}/${result.project}/${result.runId}`;
      if (result.drained) {
        console.log(`W&B run ${where}: sent ${result.rows} history rows and ${result.files} files; nothing left to send`);
      } else {
        console.error(
          `W&B run ${where}: sent ${result.rows} rows and ${result.files} files, but not everything` +
            (result.error ? ` (${result.error})` : '') +
            '; run the command again later',
        );
        process.exitCode = 1;
      }
    });
  return wandb;
}
