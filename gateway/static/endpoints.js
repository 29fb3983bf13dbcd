// Where the gateway lives, derived from the page's own address.
//
// The page only ever uses relative URLs, so it works unchanged behind a
// reverse proxy that strips a path prefix: a page served at
// https://host/captions/ talks to https://host/captions/v1/config and
// wss://host/captions/v1/listen.

/**
 * @param {string} pageHref  the page's address (location.href or document.baseURI)
 * @returns {{base: string, config: string, listen: string, listenHttp: string}}
 *   listen is the ws:/wss: URL of the streaming endpoint (no query),
 *   listenHttp the same endpoint over http(s) (used to diagnose a refused handshake).
 */
export function endpointsFor(pageHref) {
  const base = new URL('.', pageHref);
  base.search = '';
  base.hash = '';
  const listenHttp = new URL('v1/listen', base);
  const listen = new URL(listenHttp.href);
  listen.protocol = listenHttp.protocol === 'https:' ? 'wss:' : 'ws:';
  return {
    base: base.href,
    config: new URL('v1/config', base).href,
    listen: listen.href,
    listenHttp: listenHttp.href,
  };
}

/** Query parameters the page streams with: 16 kHz mono linear16 from the AudioWorklet. */
export const STREAM_PARAMS = Object.freeze({
  encoding: 'linear16',
  sample_rate: '16000',
  channels: '1',
  language: 'en',
  interim_results: 'true',
  punctuate: 'true',
  smart_format: 'true',
  endpointing: '300',
  utterance_end_ms: '1000',
  vad_events: 'true',
});

/**
 * @param {string} listen  the ws:/wss: endpoint from endpointsFor()
 * @param {Record<string, string|undefined|null>} params  extra parameters (e.g. engine); empty values are dropped
 */
export function withParams(listen, params = {}) {
  const url = new URL(listen);
  for (const [key, value] of Object.entries({ ...STREAM_PARAMS, ...params })) {
    if (value !== undefined && value !== null && value !== '') url.searchParams.set(key, String(value));
  }
  return url.href;
}

// RFC 7230 token characters: what a WebSocket subprotocol value may contain.
const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * Subprotocols that carry the API key, as browsers cannot set an Authorization header.
 * @param {string} key
 * @returns {string[]|undefined}  undefined when no key is used
 * @throws {Error} when the key cannot travel as a subprotocol
 */
export function authProtocols(key) {
  if (!key) return undefined;
  if (!TOKEN_RE.test(key)) {
    throw new Error('the API key contains characters that cannot be sent by a browser (spaces, quotes, commas, ...)');
  }
  return ['token', key];
}
