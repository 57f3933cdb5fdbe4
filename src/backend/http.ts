/**
 * One request to the backend: headers (bearer + attribution), undici on the injected
 * dispatcher, envelope decoding, and the retry layer around it. Every endpoint method of the
 * client is a thin call to `call` (JSON answers) or `open` (streamed answers).
 */
import { request, type Dispatcher } from 'undici';
import { abortReason } from '../core/abort.js';
import { BackendError, TalkError } from '../core/errors.js';
import { createRedactor } from '../core/redact.js';
import type { RouteName } from '../contract/routes.js';
import { attributionHeaders, type Attribution } from './attribution.js';
import type { TokenProvider } from './auth.js';
import { decodeAnswer } from './envelope.js';
import { networkError, type FailureContext } from './errors.js';
import { withRetries } from './retry.js';
import type { BackendTiming } from './timing.js';
import type { StreamBody } from './transfer.js';
import type { CallOptions, RequestInfo } from './types.js';

/** One logical request. */
export interface CallSpec {
  route: RouteName;
  method: 'GET' | 'POST';
  /** A path under the base URL, or an absolute http(s) URL (render output on a CDN). */
  path: string;
  json?: unknown;
  /**
   * A streamed body with its exact length and content type, built afresh for every attempt
   * because a stream can be sent only once.
   */
  stream?: () => StreamBody | Promise<StreamBody>;
  headers?: Record<string, string>;
  /** Send the bearer token (default true; false for CDN downloads). */
  auth?: boolean;
  /** See `RetryPolicy.repeatable`. */
  repeatable: boolean;
  /** Disable undici's header/body timeouts (for SSE, whose limits the turn enforces). */
  untimed?: boolean;
  /** Accept a 2xx answer only with this content type prefix (SSE); others are decoded as errors. */
  expect?: string;
}

/** What the transport needs. */
export interface TransportOptions {
  baseUrl: string;
  dispatcher: Dispatcher;
  tokens: TokenProvider;
  attribution: Attribution;
  timing: BackendTiming;
  webUrl?: string | undefined;
  creditsAdvice?: string | undefined;
  /** Told about every request once its response head (or its failure) arrives. */
  onRequest?: ((info: RequestInfo) => void) | undefined;
}

/** The transport the client's methods share. */
export class Transport {
  readonly baseUrl: string;
  readonly timing: BackendTiming;
  readonly dispatcher: Dispatcher;
  readonly tokens: TokenProvider;
  private readonly headers: Record<string, string>;
  private readonly webUrl: string | undefined;
  private readonly creditsAdvice: string | undefined;
  private readonly onRequest: ((info: RequestInfo) => void) | undefined;

  constructor(options: TransportOptions) {
    this.onRequest = options.onRequest;
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.timing = options.timing;
    this.dispatcher = options.dispatcher;
    this.tokens = options.tokens;
    this.headers = attributionHeaders(options.attribution);
    this.webUrl = options.webUrl;
    this.creditsAdvice = options.creditsAdvice;
  }

  /** Redacts every token this client has used or been given. */
  redact(text: string): string {
    return createRedactor(this.tokens.secrets())(text);
  }

  /** Context for building errors about `route`. */
  failure(route: RouteName): FailureContext {
    return {
      route,
      baseUrl: this.baseUrl,
      redact: (t) => this.redact(t),
      userSuppliedToken: this.tokens.userSupplied,
      anonymousUserId: this.tokens.anonymousUserId(),
      webUrl: this.webUrl,
      creditsAdvice: this.creditsAdvice,
    };
  }

  url(path: string): string {
    return /^https?:\/\//i.test(path) ? path : `${this.baseUrl}${path}`;
  }

  /** A JSON request: resolves with the envelope's `data` (or the whole body without envelope). */
  async call(spec: CallSpec, options: CallOptions = {}): Promise<unknown> {
    return this.withPolicy(spec, options, async (token) => {
      const response = await this.send(spec, token, options.signal);
      return this.readDecoded(spec, response, options.signal);
    });
  }

  /**
   * A streamed request: resolves with a 2xx response whose body is unread (the caller must
   * consume or destroy it). Error answers are decoded and thrown like `call`'s.
   */
  async open(spec: CallSpec, options: CallOptions = {}): Promise<Dispatcher.ResponseData> {
    return this.withPolicy(spec, options, async (token) => {
      const response = await this.send(spec, token, options.signal);
      const type = headerOf(response.headers, 'content-type') ?? '';
      const ok = response.statusCode >= 200 && response.statusCode < 300;
      if (ok && (spec.expect === undefined || type.toLowerCase().startsWith(spec.expect))) return response;
      const data = await this.readDecoded(spec, response, options.signal);
      // A 2xx JSON answer where a stream was expected: nothing to stream; say what came instead.
      throw new BackendError({
        message: this.redact(`the backend answered the ${spec.route} request with ${type || 'no content type'} instead of ${spec.expect ?? 'a body'} (${typeof data})`),
        route: spec.route,
        status: response.statusCode,
      });
    });
  }

  private async withPolicy<T>(spec: CallSpec, options: CallOptions, run: (token: string | undefined) => Promise<T>): Promise<T> {
    let lastToken: string | undefined;
    return withRetries(
      async () => {
        lastToken = spec.auth === false ? undefined : await this.tokens.token(options);
        return run(lastToken);
      },
      {
        repeatable: spec.repeatable,
        timing: this.timing,
        signal: options.signal,
        onRetry: options.onRetry,
        renewToken: spec.auth === false ? undefined : () => this.tokens.renew(lastToken, options),
      },
    );
  }

  private async send(spec: CallSpec, token: string | undefined, signal: AbortSignal | undefined): Promise<Dispatcher.ResponseData> {
    const headers: Record<string, string> = { ...this.headers, ...spec.headers };
    if (token !== undefined) headers.authorization = `Bearer ${token}`;
    let body: string | StreamBody['body'] | undefined;
    if (spec.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(spec.json);
    } else if (spec.stream) {
      const streamed = await spec.stream();
      headers['content-type'] = streamed.contentType;
      // An exact length: undici then sends the stream as is, checks the count, and never chunks.
      headers['content-length'] = String(streamed.length);
      body = streamed.body;
    }
    const timeout = spec.untimed ? 0 : this.timing.requestTimeoutMs;
    const started = Date.now();
    const report = (status: number | undefined): void =>
      this.onRequest?.({ method: spec.method, route: spec.route, status, durationMs: Date.now() - started });
    try {
      const response = await request(this.url(spec.path), {
        method: spec.method,
        headers,
        body,
        dispatcher: this.dispatcher,
        signal,
        headersTimeout: timeout,
        bodyTimeout: timeout,
      });
      report(response.statusCode);
      return response;
    } catch (error) {
      report(undefined);
      if (signal?.aborted) throw abortReason(signal, error);
      // Our own errors from inside a streamed body (a file that changed size) keep their words.
      if (error instanceof TalkError) throw error;
      throw networkError(this.failure(spec.route), error);
    }
  }

  private async readDecoded(spec: CallSpec, response: Dispatcher.ResponseData, signal: AbortSignal | undefined): Promise<unknown> {
    let text: string;
    try {
      text = await response.body.text();
    } catch (error) {
      if (signal?.aborted) throw abortReason(signal, error);
      throw networkError(this.failure(spec.route), error);
    }
    const decoded = decodeAnswer(this.failure(spec.route), {
      status: response.statusCode,
      contentType: headerOf(response.headers, 'content-type') ?? '',
      text,
      retryAfter: headerOf(response.headers, 'retry-after'),
    });
    if (!decoded.ok) throw decoded.error;
    return decoded.data;
  }
}

/** One header's value (undici gives arrays for repeated headers). */
export function headerOf(headers: Dispatcher.ResponseData['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}
