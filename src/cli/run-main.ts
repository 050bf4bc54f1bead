import { fail } from './exit.js';
import { parseRunArgs } from './run-options.js';

// `guild run` without commander: bin/guild.js loads this for `guild run …`. An ordinary command
// line runs from here; anything else (help, a mistake) goes to the full CLI, which says what is
// wrong exactly as before. Commander and the child_process it requires then never load into a run
// that waits on its agents (run-options.ts).
const parsed = parseRunArgs(process.argv.slice(3));
if (parsed === null) await import('./main.js');
else await (await import('./run-command.js')).runCommand(parsed.file, parsed.opts).catch(fail);
