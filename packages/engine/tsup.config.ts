import { gantryTsup } from '../../tsup.shared';

export default gantryTsup();
