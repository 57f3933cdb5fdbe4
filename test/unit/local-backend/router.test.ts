import { describe, expect, it } from 'vitest';
import { fillRoute, LOCAL_ROUTES, paths, ROUTES } from '../../../src/contract/routes.js';
import { matchPath, matchRoute } from '../../../src/local-backend/router.js';

describe('the local backend routes from the contract templates', () => {
  it('finds every URL the client builds, with its parameters decoded', () => {
    const cases = [
      ['POST', paths.anonymousToken, 'auth', {}],
      ['POST', paths.claimToken, 'claim', {}],
      ['POST', paths.createSession, 'session', { user: 'me' }],
      ['POST', paths.runSse, 'sse', {}],
      ['POST', paths.upload('12 3'), 'upload', { user: 'me', sessionId: '12 3' }],
      ['GET', paths.credits, 'credits', {}],
      ['GET', paths.state('9/9'), 'state', { user: 'me', sessionId: '9/9' }],
      ['POST', paths.renderSubmit, 'render', {}],
      ['GET', paths.renderStatus('render_1'), 'render-status', { renderId: 'render_1' }],
      ['POST', paths.renderCancel('render_1'), 'render-cancel', { renderId: 'render_1' }],
      ['GET', paths.renderDownload('render_1'), 'download', { renderId: 'render_1' }],
    ] as const;
    for (const [method, url, id, params] of cases) {
      expect(matchRoute(method, url), url).toEqual({ id, counted: id, params });
    }
    expect(Object.keys(ROUTES).sort()).toEqual(cases.map((c) => c[2]).sort());
  });

  it("serves its own URLs: outputUrl counts as download, media and the hooks count as nothing", () => {
    expect(matchRoute('GET', fillRoute(LOCAL_ROUTES.renderResult.path, { renderId: 'r a' }))).toEqual({ id: 'renderResult', counted: 'download', params: { renderId: 'r a' } });
    expect(matchRoute('GET', '/media/u1f.png')).toEqual({ id: 'media', counted: undefined, params: { file: 'u1f.png' } });
    expect(matchRoute('GET', '/__local/stats')).toMatchObject({ id: 'stats', counted: undefined });
    expect(matchRoute('GET', '/__local/events')).toMatchObject({ id: 'events', counted: undefined });
    expect(matchRoute('POST', '/__local/faults')).toMatchObject({ id: 'faults', counted: undefined });
  });

  it('answers 405 for a known path with another method, 404 for unknown paths, odd media names and undecodable parameters', () => {
    expect(matchRoute('GET', paths.renderSubmit)).toBe('method');
    expect(matchRoute('GET', '/__local/faults')).toBe('method');
    expect(matchRoute('POST', '/__local/stats')).toBe('method');
    expect(matchRoute('GET', '/api/nothing')).toBeUndefined();
    expect(matchRoute('GET', '/media/a%20b.png')).toBeUndefined();
    expect(matchRoute('GET', '/media/noext')).toBeUndefined();
    expect(matchRoute('GET', '/api/render/proxy/lambda/%E0')).toBeUndefined();
    expect(matchRoute('GET', '/api/render/proxy/lambda/a/b')).toBeUndefined();
  });

  it('takes the first template that matches, in the contract order', () => {
    // Both render-status (id "download") and download (id "lambda") read this path.
    expect(matchRoute('GET', '/api/render/proxy/lambda/download')).toMatchObject({ id: 'render-status', params: { renderId: 'download' } });
  });

  it('reads one template against any path (the URL form of uploads names media)', () => {
    expect(matchPath('media', '/media/u2.wav')).toEqual({ file: 'u2.wav' });
    expect(matchPath('media', '/static/x.mp4')).toBeUndefined();
  });
});
