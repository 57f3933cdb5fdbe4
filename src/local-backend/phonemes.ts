/**
 * Phonemes of a voice-over, when a recogniser is installed: CMU PocketSphinx's
 * `pocketsphinx_continuous` in phone-loop mode (`-allphone`) with its US English model
 * (Debian: `apt-get install pocketsphinx pocketsphinx-en-us`). Optional: without it — or when
 * it fails on a file — the mouth classes come from the spectrum (`voice.ts`), and the render's
 * notes say which was used. Never a reason for a render to fail.
 *
 * Found through `TALK_POCKETSPHINX` (the binary) or PATH; its model through
 * `TALK_POCKETSPHINX_MODEL` (the folder holding `en-us/` and `en-us-phone.lm.bin`) or the
 * package's own layout beside the binary (`../share/pocketsphinx/model/en-us`).
 * `TALK_PHONEMES=off` turns it off (the spectral classes are then used everywhere).
 *
 * Beams are narrow (as in the issue's measurement): 7 s of speech in about 2 s on one core;
 * the result is cached by the voice's content hash (`MediaStore.phonesOf`).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { onPath } from '../core/media-tools.js';
import { runTool } from './ffmpeg.js';
import type { MouthClass } from './voice.js';

/** Where the recogniser and its model are. */
export interface PhonemeRecogniser {
  binary: string;
  /** Acoustic model folder. */
  hmm: string;
  /** Phone language model for phone-loop decoding. */
  phoneLm: string;
}

/** One recognised phone (ARPAbet, e.g. `AA`, `M`, `SIL`), in seconds from the file's start. */
export interface Phone {
  phone: string;
  start: number;
  end: number;
}

/** The recogniser this environment offers, or undefined (not installed, or turned off). */
export function findPhonemeRecogniser(env: Readonly<Record<string, string | undefined>>): PhonemeRecogniser | undefined {
  if (env['TALK_PHONEMES'] === 'off') return undefined;
  const binary = env['TALK_POCKETSPHINX'] ?? onPath('pocketsphinx_continuous', env);
  if (!binary || !existsSync(binary)) return undefined;
  const model = env['TALK_POCKETSPHINX_MODEL'] ?? path.join(path.dirname(binary), '..', 'share', 'pocketsphinx', 'model', 'en-us');
  const hmm = path.join(model, 'en-us');
  const phoneLm = path.join(model, 'en-us-phone.lm.bin');
  if (!existsSync(path.join(hmm, 'mdef')) || !existsSync(phoneLm)) return undefined;
  return { binary, hmm, phoneLm };
}

/** Parse `-time yes` output: one `PHONE start end prob` line per segment. */
export function parsePhones(text: string): Phone[] {
  const out: Phone[] = [];
  for (const line of text.split('\n')) {
    const m = /^([A-Z+]+)\s+(\d+(?:\.\d+)?)\s+(\d+(?:\.\d+)?)\s/.exec(line.trim() + ' ');
    if (m) out.push({ phone: m[1]!, start: Number(m[2]), end: Number(m[3]) });
  }
  return out;
}

/** Recognise the phones of `file` (decoded to 16 kHz mono WAV by ffmpeg in a temp folder). */
export async function recognisePhones(rec: PhonemeRecogniser, ffmpeg: string, file: string, workParent: string, signal?: AbortSignal): Promise<Phone[]> {
  const dir = await mkdtemp(path.join(workParent, 'phones-'));
  try {
    const wav = path.join(dir, 'voice.wav');
    await runTool(ffmpeg, ['-v', 'error', '-y', '-i', file, '-vn', '-ac', '1', '-ar', '16000', '-c:a', 'pcm_s16le', wav], { signal });
    const { stdout } = await runTool(
      rec.binary,
      [
        '-infile', wav, '-hmm', rec.hmm, '-allphone', rec.phoneLm,
        '-backtrace', 'yes', '-time', 'yes',
        // Narrow beams and few active models: phones, not words, are wanted, and quickly.
        '-beam', '1e-10', '-pbeam', '1e-10', '-maxhmmpf', '1000', '-topn', '2', '-lw', '2.0',
        '-logfn', path.join(dir, 'log.txt'),
      ],
      { signal, cwd: dir },
    );
    const phones = parsePhones(stdout.toString('utf8'));
    if (phones.length === 0) {
      const log = await readFile(path.join(dir, 'log.txt'), 'utf8').catch(() => '');
      throw new Error(`no phones recognised${log ? `: ${log.trim().split('\n').slice(-1)[0] ?? ''}` : ''}`);
    }
    return phones;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** ARPAbet phones by mouth class; consonants not listed take the class of the vowel nearby. */
const PHONE_CLASS: Readonly<Record<string, MouthClass>> = {
  M: 'closed', B: 'closed', P: 'closed',
  AA: 'open', AE: 'open', AH: 'open', AY: 'open', AW: 'open', HH: 'open',
  AO: 'rounded', OW: 'rounded', OY: 'rounded', UH: 'rounded', UW: 'rounded', W: 'rounded', ER: 'rounded', R: 'rounded',
  SH: 'rounded', ZH: 'rounded', CH: 'rounded', JH: 'rounded',
  IY: 'wide', IH: 'wide', EH: 'wide', EY: 'wide', Y: 'wide', S: 'wide', Z: 'wide',
};

/**
 * Mouth classes per voice frame (`fps` a second) from recognised phones. Frames in silence or
 * in a consonant without a class of its own keep the spectral class (`fallback`), so a voice
 * the recogniser cannot follow still moves as the spectrum says.
 */
export function classesFromPhones(phones: readonly Phone[], fps: number, fallback: readonly MouthClass[]): MouthClass[] {
  const out = [...fallback];
  for (const p of phones) {
    const cls = PHONE_CLASS[p.phone];
    if (!cls) continue;
    // Times are the segment's first and last 10 ms frames: the end is inclusive.
    const from = Math.max(0, Math.round(p.start * fps));
    const to = Math.min(out.length, Math.max(from + 1, Math.round((p.end + 0.01) * fps)));
    for (let f = from; f < to; f++) out[f] = cls;
  }
  return out;
}
