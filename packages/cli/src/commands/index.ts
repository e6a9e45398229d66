import type { CommandRegistrar } from '../program.js';
import { registerBench } from './bench.js';
import { registerFid } from './fid.js';
import { registerWandb } from './wandb.js';

/** Commands beyond train/sample/list: benchmark, metrics, W&B sync. */
export const commandRegistrars: CommandRegistrar[] = [registerBench, registerFid, registerWandb];
