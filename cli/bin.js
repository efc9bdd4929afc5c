#!/usr/bin/env node
// Entry point of `npx ladder`: runs the TypeScript sources through tsx, no build step.
require('tsx/cjs');
const { main } = require('./main.ts');
main(process.argv.slice(2)).then((code) => process.exit(code));
