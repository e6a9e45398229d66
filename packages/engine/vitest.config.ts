import { gantryVitest } from '../../vitest.shared';

export default gantryVitest();
