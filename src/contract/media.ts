/** Accepted upload types and limits (CONTRACT §2.5, §6). */

/** Extensions the backend accepts (`jpeg` too, as the official CLI does). */
export const ACCEPTED_EXTENSIONS = [
  'mp4', 'mov', 'avi', 'webm', 'mkv',
  'jpg', 'jpeg', 'png', 'gif', 'webp',
  'mp3', 'wav', 'm4a', 'aac',
] as const;
export type AcceptedExtension = (typeof ACCEPTED_EXTENSIONS)[number];

export const MIME_TYPES: Record<AcceptedExtension, string> = {
  mp4: 'video/mp4',
  mov: 'video/quicktime',
  avi: 'video/x-msvideo',
  webm: 'video/webm',
  mkv: 'video/x-matroska',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  png: 'image/png',
  gif: 'image/gif',
  webp: 'image/webp',
  mp3: 'audio/mpeg',
  wav: 'audio/wav',
  m4a: 'audio/mp4',
  aac: 'audio/aac',
};

export type MediaKind = 'video' | 'image' | 'audio';

export function mediaKindOf(ext: string): MediaKind | undefined {
  const e = ext.toLowerCase().replace(/^\./, '');
  if (['mp4', 'mov', 'avi', 'webm', 'mkv'].includes(e)) return 'video';
  if (['jpg', 'jpeg', 'png', 'gif', 'webp'].includes(e)) return 'image';
  if (['mp3', 'wav', 'm4a', 'aac'].includes(e)) return 'audio';
  return undefined;
}

export function isAcceptedExtension(ext: string): ext is AcceptedExtension {
  return (ACCEPTED_EXTENSIONS as readonly string[]).includes(ext.toLowerCase().replace(/^\./, ''));
}

/** 200 MiB: the seed says "200MB"; the contract's emulator default reads it as MiB (§2.5). */
export const MAX_UPLOAD_BYTES = 200 * 1024 * 1024;
