#!/usr/bin/env node
import { main } from './program.js';
import { commandRegistrars } from './commands/index.js';

void main(process.argv, commandRegistrars);
