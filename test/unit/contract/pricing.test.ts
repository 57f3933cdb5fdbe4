import { describe, expect, it } from 'vitest';
import { PRICES, classifyInstruction } from '../../../src/contract/pricing.js';

describe('classifyInstruction', () => {
  it('reads the seed prompt as a generation plus a loop, charged once at the generation price', () => {
    const c = classifyInstruction('Make this photo talk using my voiceover and loop the animation infinitely');
    expect(c.intents.map((i) => i.kind)).toEqual(['talk', 'loop']);
    expect(c.turnClass).toBe('generation');
    expect(c.cost).toBe(PRICES.generation);
  });

  it('prices a pure edit at the edit price', () => {
    const c = classifyInstruction('Add background music');
    expect(c.intents).toEqual([{ kind: 'music' }]);
    expect(c.turnClass).toBe('edit');
    expect(c.cost).toBe(50);
  });

  it('extracts a quoted title and its duration', () => {
    const c = classifyInstruction('Add a title "Hello World" for 4 seconds');
    expect(c.intents).toEqual([{ kind: 'title', text: 'Hello World', startMs: 0, durationMs: 4000 }]);
  });

  it('does not read commands inside a quoted title', () => {
    const c = classifyInstruction('Add a caption "Loop Talk Music"');
    expect(c.intents.map((i) => i.kind)).toEqual(['title']);
    expect(c.cost).toBe(PRICES.edit);
  });

  it.each([
    ['Make it vertical', '9:16'],
    ['Switch to 16:9', '16:9'],
    ['make it square for Instagram', '1:1'],
  ] as const)('maps "%s" to aspect %s', (text, aspect) => {
    expect(classifyInstruction(text).intents).toEqual([{ kind: 'aspect', aspect }]);
  });

  it('reads trims with their length', () => {
    expect(classifyInstruction('Trim it to 5 seconds').intents).toEqual([{ kind: 'trim', seconds: 5 }]);
    expect(classifyInstruction('cut to 2.5s').intents).toEqual([{ kind: 'trim', seconds: 2.5 }]);
  });

  it('treats anything it cannot map as a free question', () => {
    const c = classifyInstruction('What can you do?');
    expect(c).toEqual({ intents: [], turnClass: 'question', cost: 0 });
  });

  it('understands a few Chinese instructions', () => {
    expect(classifyInstruction('让这张照片说话并循环').intents.map((i) => i.kind)).toEqual(['talk', 'loop']);
    expect(classifyInstruction('改成竖屏').intents).toEqual([{ kind: 'aspect', aspect: '9:16' }]);
  });
});
