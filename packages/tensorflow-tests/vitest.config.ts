import { gantryVitest } from '../../vitest.shared';

export default gantryVitest(120_000);
