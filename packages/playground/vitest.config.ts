import { gantryVitest } from '../../vitest.shared';

// One Chromium session trains for real: minutes, not seconds.
export default gantryVitest(300_000);
