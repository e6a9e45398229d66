import type { CommandRegistrar } from '../program.js';
import { registerWandb } from './wandb.js';

/** Commands contributed by other packages' modules. */
export const commandRegistrars: CommandRegistrar[] = [registerWandb];
