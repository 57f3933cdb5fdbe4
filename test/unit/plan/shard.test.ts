import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { formatPlan, parseShard, shardName, shardPlan, shardSummary } from '../../../src/plan/index.js';
import type { JobId } from '../../../src/core/ids.js';
import type { Plan } from '../../../src/plan/types.js';

function planOf(ids: string[]): Plan {
  return { workflowPath: '/w.yaml', workflowDir: '/', name: 'w', backend: { kind: 'local' }, language: 'en', concurrency: 4, limits: { uploads: 4, renders: 4 }, jobs: ids.map((id) => ({ id: id as JobId, steps: [] })) };
}

describe('parseShard', () => {
  it('reads i/n and refuses everything else with a reason', () => {
    expect(parseShard('2/3')).toEqual({ index: 2, count: 3 });
    expect(parseShard('1/1')).toEqual({ index: 1, count: 1 });
    for (const bad of ['0/3', '4/3', 'a/b', '1/0', '2', '-1/3', '1.5/3', '', '1/3/4']) expect(parseShard(bad), bad).toHaveProperty('error');
    expect(shardName({ index: 2, count: 3 })).toBe('shard-2-of-3');
  });
});

describe('shardPlan', () => {
  it('deals jobs sorted by id round-robin and keeps plan order inside a slice', () => {
    const plan = planOf(['c', 'a', 'e', 'b', 'd']);
    expect(shardPlan(plan, { index: 1, count: 2 }).jobs.map((j) => j.id)).toEqual(['c', 'a', 'e']);
    expect(shardPlan(plan, { index: 2, count: 2 }).jobs.map((j) => j.id)).toEqual(['b', 'd']);
  });

  it('every job in exactly one shard, sizes within one of each other, the same whatever the plan order', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.string({ minLength: 1, maxLength: 6 }), { maxLength: 60 }), fc.integer({ min: 1, max: 9 }), (ids, count) => {
        const slices = Array.from({ length: count }, (_, i) => shardPlan(planOf(ids), { index: i + 1, count }).jobs.map((j) => j.id as string));
        expect(slices.flat().sort()).toEqual([...ids].sort());
        const sizes = slices.map((s) => s.length);
        expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
        const reversed = Array.from({ length: count }, (_, i) => shardPlan(planOf([...ids].reverse()), { index: i + 1, count }).jobs.map((j) => j.id as string).sort());
        expect(reversed).toEqual(slices.map((s) => [...s].sort()));
      }),
    );
  });

  it('says what a slice holds of the whole — also when it holds none — in the plan text and the run notice', () => {
    const plan = planOf(['c', 'a', 'e', 'b', 'd']);
    expect(shardSummary(plan)).toBeUndefined();
    const second = shardPlan(plan, { index: 2, count: 3 });
    expect(second.shard).toEqual({ index: 2, count: 3, of: 5 });
    expect(shardSummary(second)).toBe("shard 2/3: 2 of the workflow's 5 jobs (dealt out by sorted job id)");
    expect(formatPlan(second)).toContain("\nshard 2/3: 2 of the workflow's 5 jobs");
    const empty = shardPlan(planOf(['only']), { index: 2, count: 3 });
    expect(shardSummary(empty)).toBe("shard 2/3: none of the workflow's 1 job (dealt out by sorted job id)");
    // Not "foreach matched nothing": the workflow has jobs, this slice got none of them.
    expect(formatPlan(empty)).not.toContain('foreach matched nothing');
    expect(formatPlan(planOf([]))).toContain('foreach matched nothing');
  });
});
