/**
 * The big batch the plan and scheduler benches share: a `foreach` over `faces/*.jpg` with
 * voices paired by stem, two uploads and one instruction per item, written as the benches run it.
 */
export function bigForeachYaml(options: { concurrency?: number } = {}): string {
  return [
    'version: 1',
    'name: big',
    ...(options.concurrency === undefined ? [] : [`concurrency: ${options.concurrency}`]),
    'foreach:',
    '  portrait: faces/*.jpg',
    '  voice: voices/${{ item.portrait.stem }}.mp3',
    'steps:',
    '  - { id: portrait, upload: portrait }',
    '  - { id: voice, upload: voice }',
    '  - { id: talk, needs: [portrait, voice], instruction: Make this photo talk using my voiceover }',
    '',
  ].join('\n');
}
