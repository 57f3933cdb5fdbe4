/**
 * The agent talks as if the user sat in front of NemoVideo's web editor ("click Export",
 * "drag the clip", "open the panel"). In a CLI those are not instructions anyone can follow,
 * so each such sentence is replaced by what talk does instead (CONTRACT §2.4, seed §4).
 */

/** One rule: sentences matching `test` become `instead`. Order matters: first match wins. */
interface GuiRule {
  test: RegExp;
  instead: string;
}

const RULES: readonly GuiRule[] = [
  {
    test: /\b(export|download|render)\b[^.!?]*\b(button|click|tap|press|menu)\b|\b(click|tap|press|hit|use|select)\b[^.!?]*\b(export|download|render)\b|导出/i,
    instead: 'talk exports the video in the workflow\'s export step.',
  },
  {
    test: /\bpreview\b[^.!?]*\btimeline\b|\btimeline\b[^.!?]*\bpreview\b/i,
    instead: '`talk status` shows the timeline summary.',
  },
  {
    test: /\b(drag|drop)\b|拖拽|拖动/i,
    instead: 'to change the arrangement, add another instruction to the workflow.',
  },
  {
    test: /\bopen\b[^.!?]*\b(panel|tab|editor|sidebar|settings|menu|window)\b|打开/i,
    instead: '`talk status` shows the session\'s current state.',
  },
  {
    test: /\b(click|tap|press)\b[^.!?]*\b(button|icon|link|on)\b|点击/i,
    instead: 'talk does this through the API; nothing to click.',
  },
];

/** Split into sentences, keeping each one's terminator and trailing space. */
function sentences(text: string): string[] {
  return text.match(/[^.!?。！？\n]+(?:[.!?。！？]+|\n+|$)\s*/g) ?? [text];
}

/** Replace every GUI-assuming sentence with what the CLI does instead; others pass unchanged. */
export function translateGuiPhrases(text: string): string {
  const used = new Set<string>();
  const out: string[] = [];
  for (const sentence of sentences(text)) {
    const rule = RULES.find((r) => r.test.test(sentence));
    if (!rule) {
      out.push(sentence);
      continue;
    }
    // The same advice twice in one reply reads like a glitch; say it once.
    if (used.has(rule.instead)) continue;
    used.add(rule.instead);
    const trailing = /\s*$/.exec(sentence)?.[0] ?? '';
    out.push(`${rule.instead}${trailing || ' '}`);
  }
  return out.join('').trim();
}
