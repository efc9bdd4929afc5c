import type { Command } from 'commander';

/** Adds an "Example:" block under a command's help (every command has one: cli.test.ts checks). */
export function example(cmd: Command, ...lines: string[]): Command {
  return cmd.addHelpText('after', `\nExample:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`);
}
