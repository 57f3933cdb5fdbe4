// The other program in the watch bench: drops N stem bundles into a folder as fast as the file
// system takes them, each file written under a `.part` name and renamed into place (as copy and
// sync tools do). It runs in its own process, as a sync tool would, and prints one JSON line per
// bundle with the time its last file landed.
//
//   drop-bundles INBOX COUNT [PORTRAIT VOICE]
// With PORTRAIT and VOICE, bundles are real media in 10 variants (a JPEG comment) plus a
// `<stem>.yaml` of instructions, so each bundle is distinct content; without, a few bytes each.
import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { jpegWithComment } from '../../test/helpers/media.js';

const [inbox, countText, portraitFile, voiceFile] = process.argv.slice(2);
if (!inbox || !countText) throw new Error('usage: drop-bundles INBOX COUNT [PORTRAIT VOICE]');
const count = Number(countText);
const media = portraitFile && voiceFile ? { portrait: await readFile(portraitFile), voice: await readFile(voiceFile) } : undefined;

process.stdout.write(`${JSON.stringify({ start: Date.now() })}\n`);
for (let i = 0; i < count; i += 1) {
  const stem = `b${String(i).padStart(5, '0')}`;
  const files: [string, string | Buffer][] = media
    ? [
        ['jpg', jpegWithComment(media.portrait, `v${i % 10}`)],
        ['mp3', media.voice],
        ['yaml', `# bundle ${stem}\ninstructions: [Make this photo talk using my voiceover]\n`],
      ]
    : [
        ['jpg', `portrait ${i}`],
        ['mp3', `voice ${i}`],
      ];
  for (const [ext, content] of files) {
    const file = path.join(inbox, `${stem}.${ext}`);
    await writeFile(`${file}.part`, content);
    await rename(`${file}.part`, file);
  }
  process.stdout.write(`${JSON.stringify({ stem, at: Date.now() })}\n`);
}
process.stdout.write(`${JSON.stringify({ end: Date.now() })}\n`);
