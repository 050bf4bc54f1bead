import { InvalidArgumentError, Option, type Command } from 'commander';
import { RUN_OPTIONS } from './run-options.js';

/** A plain parser as commander's: what it throws becomes commander's "argument '…' is invalid. …". */
export function commanderParser<T>(parse: (value: string) => T): (value: string) => T {
  return (value) => {
    try {
      return parse(value);
    } catch (e) {
      throw new InvalidArgumentError((e as Error).message);
    }
  };
}

/** `guild run` on `program`, its options from RUN_OPTIONS (run-options.ts); the caller adds the action. */
export function defineRun(program: Command): Command {
  const run = program.command('run').description('run a workflow file').argument('<file>', 'workflow file (YAML)');
  for (const spec of RUN_OPTIONS) {
    const o = new Option(spec.flags, spec.description);
    if (spec.parse) o.argParser(commanderParser(spec.parse));
    if (spec.choices) o.choices([...spec.choices]);
    if (spec.default !== undefined) o.default(spec.default);
    run.addOption(o);
  }
  return run;
}
