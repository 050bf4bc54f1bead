import { createHash } from 'node:crypto';
import { cpus } from 'node:os';
import type { SystemProbe } from '../system/probe.js';
import type { Fingerprint } from './types.js';

// Which machine a bench run was measured on. Two runs are comparable only on the same
// fingerprint: another Node, CPU, core count or memory limit makes an absolute figure mean
// something else.

/** This machine as the probe sees it: Node's version, the CPU model, usable cores, the effective memory limit. */
export function machineFingerprint(probe: SystemProbe): Fingerprint {
  return {
    node: process.version,
    cpuModel: (cpus()[0]?.model ?? 'unknown').trim().replace(/\s+/g, ' '),
    cores: probe.cpu().cores,
    memoryLimitBytes: probe.memory().limitBytes,
  };
}

/** 16 hex digits naming a fingerprint; equal fingerprints give equal hashes whatever the key order. */
export function fingerprintHash(f: Fingerprint): string {
  const canonical = JSON.stringify([f.node, f.cpuModel, f.cores, f.memoryLimitBytes]);
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}
