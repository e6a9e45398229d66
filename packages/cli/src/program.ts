import { Command } from 'commander';
import { GantryError } from '@gantry/core';
import { registerSample } from './commands/sample.js';
import { registerTrain } from './commands/train.js';
import { listExperiments } from './experiments/index.js';
import { GANTRY_VERSION } from './version.js';

/** Commands contributed by other modules register here (bench, fid, wandb). */
export type CommandRegistrar = (program: Command) => void;

export function buildProgram(extra: CommandRegistrar[] = []): Command {
  const program = new Command('gantry')
    .description('Train GANs on TensorFlow.js: runs, checkpoints, samples, metrics and benchmarks')
    .version(GANTRY_VERSION)
    // Program options (--version) only before a command name, so `gantry setup tensorflow --version 2.21.0` reaches
    // the command.
    .enablePositionalOptions()
    // Bad input is one line that names the problem (and where the options are), not the line plus the whole usage.
    .configureOutput({ outputError: (text, write) => write(`${text.trim().replace(/\s*\n\s*/g, ' ')} (--help lists the options)\n`) });
  registerTrain(program);
  registerSample(program);
  program
    .command('list')
    .description('list the built-in experiments')
    .action(() => {
      for (const e of listExperiments()) console.log(`${e.name.padEnd(20)} ${e.description}`);
    });
  for (const register of extra) register(program);
  return program;
}

/** Runs the CLI: errors the user can act on print as one line; anything else keeps its stack. */
export async function main(argv: string[] = process.argv, extra: CommandRegistrar[] = []): Promise<void> {
  try {
    await buildProgram(extra).parseAsync(argv);
  } catch (error) {
    if (error instanceof GantryError) {
      console.error(`gantry: ${error.message}`);
    } else {
      console.error(error);
    }
    process.exitCode = 1;
  }
}
