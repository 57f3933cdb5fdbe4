import { describe, expect, it } from 'vitest';
import { translateGuiPhrases } from '../../../src/backend/gui-phrases.js';
import { describeChange, snapshotState, stateChanged } from '../../../src/backend/state-diff.js';
import { resolveBackendUrl } from '../../../src/backend/index.js';
import { detectPlatform, resolveAttribution } from '../../../src/backend/attribution.js';
import type { SessionStateData } from '../../../src/contract/bodies.js';

describe('translateGuiPhrases', () => {
  it('replaces GUI instructions with what the CLI does and keeps the rest', () => {
    expect(translateGuiPhrases('Your 10-second clip is ready. Click Export to save it.')).toBe(
      "Your 10-second clip is ready. talk exports the video in the workflow's export step.",
    );
    expect(translateGuiPhrases('Drag the title to the start of the timeline.')).toMatch(/add another instruction/);
    expect(translateGuiPhrases('Open the effects panel to adjust it.')).toMatch(/`talk status`/);
    expect(translateGuiPhrases('You can preview it in the timeline.')).toMatch(/timeline summary/);
    expect(translateGuiPhrases('视频已生成，请点击导出按钮。')).not.toMatch(/点击/);
    expect(translateGuiPhrases('I added background music at 35% volume.')).toBe('I added background music at 35% volume.');
  });

  it('says the same advice once', () => {
    const out = translateGuiPhrases('Click Export. Then press the Export button again.');
    expect(out.match(/exports the video/g)).toHaveLength(1);
  });
});

describe('state snapshots', () => {
  const state = (draft: unknown, videoInfos = 0): SessionStateData =>
    ({ session_id: 's', task_id: 't', task_name: 'p', state: { video_infos: Array.from({ length: videoInfos }, () => ({})), draft } }) as unknown as SessionStateData;

  it('treats absent, null and {} drafts alike', () => {
    const a = snapshotState(state(undefined));
    expect(snapshotState(state(null))).toEqual(a);
    expect(snapshotState(state({}))).toMatchObject({ tracks: 0, durationMs: 0 });
  });

  it('describes what changed, or that nothing did', () => {
    const before = snapshotState(state({ t: [{ tt: 0, sg: [{ id: 'v' }] }], d: 10_000 }, 2));
    const after = snapshotState(state({ t: [{ tt: 0, sg: [{ id: 'v' }] }, { tt: 1, sg: [{ id: 'a' }] }], d: 12_000 }, 2));
    expect(describeChange(before, after)).toBe('added 1 track; duration 10 s → 12 s');
    expect(describeChange(before, before)).toBe('nothing changed');
    expect(stateChanged(before, after)).toBe(true);
    const retitled = snapshotState(state({ t: [{ tt: 0, sg: [{ id: 'v', name: 'new' }] }], d: 10_000 }, 2));
    expect(describeChange(before, retitled)).toBe('the timeline was edited');
  });

  it('hashes drafts independently of key order', () => {
    expect(snapshotState(state({ d: 1, t: [] })).draftHash).toBe(snapshotState(state({ t: [], d: 1 })).draftHash);
  });
});

describe('resolveBackendUrl and attribution', () => {
  it('uses NEMO_API_URL for cloud, accepts http(s) URLs, refuses others', () => {
    expect(resolveBackendUrl('cloud', {})).toBe('https://mega-api-prod.nemovideo.ai');
    expect(resolveBackendUrl('cloud', { NEMO_API_URL: 'https://mega-api-dev.nemovideo.ai/' })).toBe('https://mega-api-dev.nemovideo.ai');
    expect(resolveBackendUrl('http://127.0.0.1:8080/', {})).toBe('http://127.0.0.1:8080');
    expect(() => resolveBackendUrl('ftp://x', {})).toThrow(/http\(s\)/);
    expect(() => resolveBackendUrl('local', {})).toThrow(/local backend/);
  });

  it('defaults to the seed\'s attribution and lets flags and env override it', () => {
    expect(resolveAttribution({ version: '1.2.3' }, {})).toEqual({ source: 'infinite-talk-ai', version: '1.2.3', platform: 'unknown' });
    expect(resolveAttribution({ source: 'flag' }, { SKILL_SOURCE: 'env' }).source).toBe('flag');
    expect(resolveAttribution(undefined, { SKILL_SOURCE: 'env' }).source).toBe('env');
    expect(detectPlatform({}, '/home/u/.clawhub/skills/talk/bin/talk.js')).toBe('clawhub');
    expect(detectPlatform({ CLAUDECODE: '1' })).toBe('claude_code');
  });
});
