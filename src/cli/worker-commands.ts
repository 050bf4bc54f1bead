import { Command, InvalidArgumentError } from 'commander';

// `guild worker --redis URL`: a long-lived worker of a distributed Guild. Heavy modules (BullMQ,
// ioredis, the supervisor) load inside the action, so `guild --version` stays fast.

interface WorkerOpts {
  redis: string;
  queue: string;
  budget?: string;
  name?: string;
  workdir?: string;
  handBack?: boolean;
  lockDuration?: number;
}

/** A --redis value: redis:// or rediss://. */
export function redisUrl(v: string): string {
  if (!/^rediss?:\/\//.test(v)) throw new InvalidArgumentError(`Expected a Redis URL such as redis://127.0.0.1:6379, got '${v}'.`);
  return v;
}

function positiveMs(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 100) throw new InvalidArgumentError(`Expected a whole number of milliseconds >= 100, got '${v}'.`);
  return n;
}

/** A --queue value. */
export function queueName(v: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(v)) throw new InvalidArgumentError(`Expected a queue name of letters, digits, '_' or '-', got '${v}'.`);
  return v;
}

/** `fail` prints a GuildError and exits with its code; `exit` exits. */
export function addWorkerCommands(program: Command, fail: (e: unknown) => never, exit: (code: number) => never): void {
  program
    .command('worker')
    .description('serve a distributed Guild: take jobs from Redis when this machine can admit them (needs GUILD_CLUSTER_KEY)')
    .requiredOption('--redis <url>', 'the Redis of the cluster (redis:// or rediss://, with a password if it needs one)', redisUrl)
    .option('--queue <name>', 'the queue family to serve', queueName, 'guild')
    .option('--budget <size>', 'memory for jobs at once, e.g. 4GB (default 75% of the effective limit)')
    .option('--name <name>', 'its name in heartbeats and reports (default <host>-<pid>)')
    .option('--workdir <dir>', 'the git checkout jobs from a repository run in (default: the current folder)')
    .option('--lock-duration <ms>', "a job's BullMQ lock, extended every half of it; a dead worker's jobs go back to the queue within about twice this (default 30000)", positiveMs)
    .option('--hand-back', 'on SIGINT/SIGTERM, stop running jobs and put them back in the queue instead of letting them finish')
    .action(async (opts: WorkerOpts) => {
      const { hostname } = await import('node:os');
      const { resolve } = await import('node:path');
      const { GuildError } = await import('../errors.js');
      const { parseSize, formatBytes } = await import('../util/units.js');
      const { DEFAULTS } = await import('../config/defaults.js');
      const { clusterKey } = await import('../distributed/signing.js');
      const { GuildWorker } = await import('../distributed/worker.js');
      const { createSystemProbe } = await import('../system/probe.js');
      let key: string;
      try {
        key = clusterKey(); // no key, no worker: it would run whatever anyone writes to the queues
      } catch (e) {
        fail(e);
      }
      const probe = createSystemProbe();
      let budgetBytes: number;
      if (opts.budget !== undefined) {
        const b = parseSize(opts.budget);
        if (b === undefined || !(b > 0)) fail(new GuildError('USAGE', `--budget: Expected a size such as 4GB, got '${opts.budget}'`));
        budgetBytes = b;
      } else {
        budgetBytes = Math.floor(probe.memory().limitBytes * DEFAULTS.budgetShare);
      }
      const name = opts.name ?? `${hostname()}-${process.pid}`;
      const log = (line: string): void => void process.stderr.write(`guild worker ${name}: ${line}\n`);
      const worker = new GuildWorker({ redisUrl: opts.redis, queue: opts.queue, budgetBytes, name, workdir: resolve(opts.workdir ?? '.'), key, probe, log, ...(opts.lockDuration !== undefined && { lockDurationMs: opts.lockDuration }) });
      let signalled = false;
      const onSignal = (sig: 'SIGINT' | 'SIGTERM') => (): void => {
        if (signalled) {
          log(`${sig} again: killing ${worker.running} running job(s) now`);
          void worker.close().finally(() => exit(sig === 'SIGINT' ? 130 : 143));
          return;
        }
        signalled = true;
        log(`${sig}: no new jobs; ${opts.handBack ? 'handing running jobs back to the queue' : `letting ${worker.running} running job(s) finish`} (again to kill them)`);
        void worker.stop({ handBack: opts.handBack === true }).then(
          () => {
            probe.close();
            exit(0);
          },
          (e: unknown) => fail(e),
        );
      };
      process.on('SIGINT', onSignal('SIGINT'));
      process.on('SIGTERM', onSignal('SIGTERM'));
      try {
        await worker.start();
      } catch (e) {
        probe.close();
        fail(e);
      }
      log(`serving queue '${opts.queue}' on ${opts.redis.replace(/\/\/[^@]*@/, '//***@')} with a budget of ${formatBytes(budgetBytes)}, workdir ${resolve(opts.workdir ?? '.')}`);
    });
}
