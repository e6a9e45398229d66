import type { CommandRegistrar } from '../program.js';
import { registerBench } from './bench.js';
import { registerFid } from './fid.js';
import { registerSetup } from './setup.js';
import { registerWandb } from './wandb.js';

/** Commands beyond train/sample/list: benchmark, metrics, engine setup, W&B sync. */
export const commandRegistrars: CommandRegistrar[] = [registerBench, registerFid, registerSetup, registerWandb];
