import { gantryTsup } from '../../tsup.shared';

export default gantryTsup({ index: 'src/index.ts', bin: 'src/bin.ts', experiments: 'src/experiments/index.ts' });
