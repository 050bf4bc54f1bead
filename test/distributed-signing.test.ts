import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GuildError } from '../src/errors.js';
import { canonicalJson, clusterKey, signJob, verifyJob } from '../src/distributed/signing.js';

const KEY = 'k'.repeat(32);
const payload = { v: 1, jobId: 'r1.a.1', command: 'echo hi', env: { B: '2', A: '1' }, where: { kind: 'path', dir: '/tmp/x' } };

const rejected = (code: string) => (e: unknown) => e instanceof GuildError && e.code === code;

describe('job signing', () => {
  it('a signed payload verifies and comes back as it was', () => {
    const env = signJob(payload, KEY);
    assert.match(env.sig, /^[0-9a-f]{64}$/);
    assert.deepEqual(verifyJob(env, KEY), payload);
  });

  it('the signature does not depend on the order of keys', () => {
    const reordered = { where: { dir: '/tmp/x', kind: 'path' }, env: { A: '1', B: '2' }, command: 'echo hi', jobId: 'r1.a.1', v: 1 };
    assert.equal(signJob(reordered, KEY).sig, signJob(payload, KEY).sig);
    assert.equal(canonicalJson(reordered), canonicalJson(payload));
  });

  it('an altered payload, a missing, malformed or foreign signature is rejected with JOB_SIGNATURE', () => {
    const env = signJob(payload, KEY);
    assert.throws(() => verifyJob({ ...env, payload: { ...payload, command: 'touch pwned' } }, KEY), rejected('JOB_SIGNATURE'));
    assert.throws(() => verifyJob({ ...env, payload: { ...payload, env: { ...payload.env, A: '9' } } }, KEY), rejected('JOB_SIGNATURE'));
    assert.throws(() => verifyJob({ payload }, KEY), rejected('JOB_SIGNATURE'));
    assert.throws(() => verifyJob({ payload, sig: 'zz' }, KEY), rejected('JOB_SIGNATURE'));
    assert.throws(() => verifyJob({ payload, sig: env.sig.slice(0, 62) }, KEY), rejected('JOB_SIGNATURE'));
    assert.throws(() => verifyJob(env, 'x'.repeat(32)), rejected('JOB_SIGNATURE'));
    assert.throws(() => verifyJob({ command: 'touch pwned' }, KEY), rejected('JOB_SIGNATURE'));
    assert.throws(() => verifyJob(null, KEY), rejected('JOB_SIGNATURE'));
  });

  it('the cluster key comes from GUILD_CLUSTER_KEY; none or a short one is refused with CLUSTER_KEY', () => {
    assert.equal(clusterKey({ GUILD_CLUSTER_KEY: KEY }), KEY);
    assert.throws(() => clusterKey({}), rejected('CLUSTER_KEY'));
    assert.throws(() => clusterKey({ GUILD_CLUSTER_KEY: '' }), rejected('CLUSTER_KEY'));
    assert.throws(() => clusterKey({ GUILD_CLUSTER_KEY: 'short' }), rejected('CLUSTER_KEY'));
  });
});
