import { gantryTsup } from '../../tsup.shared';

export default gantryTsup({ index: 'src/index.ts', charts: 'src/charts/index.ts' });
