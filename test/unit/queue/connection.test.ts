import { describe, expect, it } from 'vitest';
import { parseQueueUrl } from '../../../src/queue/connection.js';
import { queueJobId } from '../../../src/queue/job-data.js';
import { TalkError } from '../../../src/core/errors.js';

describe('parseQueueUrl', () => {
  it('reads redis://host[:port][/db] and never shows a password', () => {
    expect(parseQueueUrl('redis://127.0.0.1:6380/2')).toMatchObject({ host: '127.0.0.1', port: 6380, db: 2, shown: 'redis://127.0.0.1:6380/2' });
    expect(parseQueueUrl('redis://queue.internal')).toMatchObject({ host: 'queue.internal', port: 6379, db: 0, shown: 'redis://queue.internal:6379' });
    const secret = parseQueueUrl('redis://user:s3cret@h:1');
    expect(secret).toMatchObject({ username: 'user', password: 's3cret' });
    expect(secret.shown).not.toContain('s3cret');
  });

  it('refuses other schemes, bad databases and non-URLs as usage errors', () => {
    for (const bad of ['http://h:1', 'redis://h:1/x', 'redis://h:1/-1', 'localhost:6379', '']) {
      let error: unknown;
      try {
        parseQueueUrl(bad);
      } catch (e) {
        error = e;
      }
      expect(error, bad).toBeInstanceOf(TalkError);
      expect((error as TalkError).code, bad).toBe('usage');
    }
  });
});

describe('queueJobId', () => {
  it('is the same for the same job and changes with any step fingerprint, the workflow or the backend', () => {
    const base = queueJobId('/w.yaml', 'http://b', 'p01', { a: '1', b: '2' });
    expect(queueJobId('/w.yaml', 'http://b', 'p01', { b: '2', a: '1' })).toBe(base);
    expect(base).toMatch(/^[0-9a-f]{64}$/);
    for (const other of [queueJobId('/w.yaml', 'http://b', 'p01', { a: '1', b: '3' }), queueJobId('/v.yaml', 'http://b', 'p01', { a: '1', b: '2' }), queueJobId('/w.yaml', 'http://c', 'p01', { a: '1', b: '2' }), queueJobId('/w.yaml', 'http://b', 'p02', { a: '1', b: '2' })]) {
      expect(other).not.toBe(base);
    }
  });
});
