/**
 * Face landmarks for the local preview: 68 points (dlib order) from `@vladmandic/face-api`'s tiny
 * face detector and landmark net, run on TensorFlow.js's WebAssembly backend. The weights and
 * the `.wasm` binaries ship inside those npm packages and are read from disk: no network, no
 * native build. Pictures are decoded with ffmpeg (no canvas package needed).
 *
 * Point indices used by the renderer and the measuring helper (0-based, dlib's 68):
 * jaw 0–16 (chin 8), nose tip 30, nose base 33, eyes 36–41 / 42–47, outer lips 48–59
 * (corners 48 and 54), inner lips 60–67 (upper 61–63, lower 65–67).
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { TalkError } from '../core/errors.js';
import { runTool } from './ffmpeg.js';

/** One point in pixels of the picture it was found in. */
export type Point = readonly [x: number, y: number];

/** The face found in a picture, in that picture's pixel coordinates. */
export interface FaceLandmarks {
  /** Size of the picture the points refer to (the portrait's own size). */
  width: number;
  height: number;
  /** Detector confidence, 0..1. */
  score: number;
  box: { x: number; y: number; width: number; height: number };
  /** The 68 landmarks. */
  points: Point[];
}

/** What the face finder needs of face-api (its own typings pull in all of TensorFlow.js). */
interface FaceApi {
  tf: {
    setBackend(name: string): Promise<boolean>;
    ready(): Promise<void>;
    enableProdMode(): void;
    tensor3d(values: Uint8Array, shape: [number, number, number], dtype: 'int32'): { dispose(): void };
  };
  nets: { tinyFaceDetector: { loadFromDisk(dir: string): Promise<void> }; faceLandmark68Net: { loadFromDisk(dir: string): Promise<void> } };
  TinyFaceDetectorOptions: new (options: { inputSize: number; scoreThreshold: number }) => unknown;
  detectLandmarks(input: unknown): Promise<{ positions: { x: number; y: number }[] }>;
  detectAllFaces(input: unknown, options: unknown): {
    withFaceLandmarks(): Promise<{ detection: { score: number; box: { x: number; y: number; width: number; height: number } }; landmarks: { positions: { x: number; y: number }[] } }[]>;
  };
}

/** Longest side the detector looks at: enough for a face a tenth of the frame wide. */
const DETECT_SIZE = 800;

let loaded: Promise<FaceApi> | undefined;
let queue: Promise<unknown> = Promise.resolve();

/**
 * Load face-api on the wasm backend and its two nets, once per process: TensorFlow.js keeps its
 * backend and weights in process-global state, so one loaded copy serves every server.
 */
export function loadFaceApi(): Promise<FaceApi> {
  loaded ??= (async () => {
    const require = createRequire(import.meta.url);
    let api: FaceApi;
    let modelDir: string;
    let wasmDir: string;
    try {
      // The node-wasm build expects @tensorflow/tfjs and the wasm backend next to it.
      api = require('@vladmandic/face-api/dist/face-api.node-wasm.js') as FaceApi;
      modelDir = path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), 'model');
      const wasm = require('@tensorflow/tfjs-backend-wasm') as { setWasmPaths(prefix: string): void };
      wasmDir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
      wasm.setWasmPaths(wasmDir + path.sep);
    } catch (error) {
      throw new TalkError('internal', `the local backend's face finder could not load: ${error instanceof Error ? error.message : String(error)}`, {
        cause: error,
        hint: 'run `npm ci` in talk\'s folder (it installs @vladmandic/face-api, @tensorflow/tfjs and @tensorflow/tfjs-backend-wasm)',
      });
    }
    await api.tf.setBackend('wasm');
    await api.tf.ready();
    api.tf.enableProdMode();
    await api.nets.tinyFaceDetector.loadFromDisk(modelDir);
    await api.nets.faceLandmark68Net.loadFromDisk(modelDir);
    return api;
  })();
  // A failed load is not remembered, so a fixed install works without a restart.
  loaded.catch(() => {
    loaded = undefined;
  });
  return loaded;
}

/**
 * Find faces in raw RGB pixels (`width`×`height`, 3 bytes a pixel); largest first. Calls are
 * run one at a time: the backend is shared and a detection is CPU-bound anyway.
 */
export function detectFaces(rgb: Uint8Array, width: number, height: number, minScore = 0.4): Promise<FaceLandmarks[]> {
  const run = queue.then(async () => {
    const api = await loadFaceApi();
    const tensor = api.tf.tensor3d(rgb, [height, width, 3], 'int32');
    try {
      // inputSize 416 is the detector's middle setting: faces from a tenth of the frame up.
      const found = await api.detectAllFaces(tensor, new api.TinyFaceDetectorOptions({ inputSize: 416, scoreThreshold: minScore })).withFaceLandmarks();
      return found
        .map((f) => ({
          width,
          height,
          score: f.detection.score,
          box: { x: f.detection.box.x, y: f.detection.box.y, width: f.detection.box.width, height: f.detection.box.height },
          points: f.landmarks.positions.map((p) => [p.x, p.y] as const),
        }))
        .sort((a, b) => b.box.width * b.box.height - a.box.width * a.box.height);
    } finally {
      tensor.dispose();
    }
  });
  queue = run.catch(() => undefined);
  return run;
}

/**
 * The 68 landmarks of the face inside `box` of RGB pixels (`width`×`height`), without looking
 * for the face: the landmark net alone, on that box cut out. For measuring a video against one
 * fixed box, so that the box itself does not follow the jaw (the detector's does).
 */
export function landmarksInBox(rgb: Uint8Array, width: number, height: number, box: { x: number; y: number; width: number; height: number }): Promise<Point[]> {
  const x0 = Math.max(0, Math.floor(box.x));
  const y0 = Math.max(0, Math.floor(box.y));
  const w = Math.max(2, Math.min(width, Math.floor(box.x + box.width)) - x0);
  const h = Math.max(2, Math.min(height, Math.floor(box.y + box.height)) - y0);
  const crop = new Uint8Array(w * h * 3);
  for (let row = 0; row < h; row++) crop.set(rgb.subarray(((y0 + row) * width + x0) * 3, ((y0 + row) * width + x0 + w) * 3), row * w * 3);
  const run = queue.then(async () => {
    const api = await loadFaceApi();
    const tensor = api.tf.tensor3d(crop, [h, w, 3], 'int32');
    try {
      const found = await api.detectLandmarks(tensor);
      return found.positions.map((p) => [p.x + x0, p.y + y0] as const);
    } finally {
      tensor.dispose();
    }
  });
  queue = run.catch(() => undefined);
  return run;
}

/** Decode a picture (or a video's first frame) to RGB at exactly `size`. */
export async function decodeRgb(
  ffmpeg: string,
  file: string,
  size: { width: number; height: number },
  signal?: AbortSignal,
): Promise<Uint8Array> {
  const { stdout } = await runTool(ffmpeg, ['-v', 'error', '-i', file, '-frames:v', '1', '-vf', `scale=${size.width}:${size.height}:flags=bicubic`, '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], { signal });
  if (stdout.length < size.width * size.height * 3) throw new TalkError('internal', `could not decode ${path.basename(file)} to ${size.width}×${size.height}`);
  return new Uint8Array(stdout.buffer, stdout.byteOffset, size.width * size.height * 3);
}

/** Size to decode a picture at for detection: its own size, scaled down to DETECT_SIZE. */
export function detectionSize(width: number, height: number): { width: number; height: number } {
  const scale = Math.min(1, DETECT_SIZE / Math.max(width, height));
  return { width: Math.max(2, Math.round(width * scale)), height: Math.max(2, Math.round(height * scale)) };
}

/**
 * The largest face in RGB pixels decoded at `small` (see `detectionSize`) from a portrait of
 * `size`, in the portrait's own pixel coordinates, or undefined when there is none.
 */
export async function findFaceInPixels(rgb: Uint8Array, small: { width: number; height: number }, size: { width: number; height: number }): Promise<FaceLandmarks | undefined> {
  const [face] = await detectFaces(rgb, small.width, small.height);
  if (!face) return undefined;
  const sx = size.width / small.width;
  const sy = size.height / small.height;
  return {
    width: size.width,
    height: size.height,
    score: Math.round(face.score * 1000) / 1000,
    box: { x: face.box.x * sx, y: face.box.y * sy, width: face.box.width * sx, height: face.box.height * sy },
    points: face.points.map(([x, y]) => [Math.round(x * sx * 10) / 10, Math.round(y * sy * 10) / 10] as const),
  };
}

/** The largest face in a portrait file of `size` (decoded with ffmpeg), or undefined. */
export async function findFace(ffmpeg: string, file: string, size: { width: number; height: number }, signal?: AbortSignal): Promise<FaceLandmarks | undefined> {
  const small = detectionSize(size.width, size.height);
  const rgb = await decodeRgb(ffmpeg, file, small, signal);
  signal?.throwIfAborted();
  return findFaceInPixels(rgb, small, size);
}
