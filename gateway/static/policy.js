// What to do when a stream ends or cannot start: pure decisions, no I/O.

/** Close codes that mean "the server refused this stream": retrying cannot help. */
export function isRefusalCode(code) {
  return code === 1003 /* unsupported data */ || code === 1007 /* invalid payload */
    || code === 1008 /* policy violation, e.g. bad credentials */ || code === 1009 /* frame too large */
    || (code >= 4000 && code <= 4999);
}

/**
 * @param {{code: number, reason: string, opened: boolean, stopping: boolean}} close
 * @returns {'done'|'refused'|'handshake'|'retry'}
 *   done: the user stopped the stream; refused: show the reason, do not retry;
 *   handshake: the upgrade failed before opening (browsers hide the HTTP status:
 *   ask the server over plain HTTP why, see classifyHttpStatus); retry: reconnect with backoff.
 */
export function classifyClose({ code, opened, stopping }) {
  if (stopping) return 'done';
  if (isRefusalCode(code)) return 'refused';
  if (!opened) return 'handshake';
  return 'retry';
}

/**
 * Status of a plain HTTP GET of the listen URL (same key, same parameters) made
 * after a failed handshake. 401/403: bad or missing key; 400: bad parameters;
 * 404: nothing serves /v1/listen under this prefix. Anything else (426 Upgrade
 * Required, 429, 5xx, network error) is taken as transient.
 * @param {number|null} status
 * @returns {'refused'|'retry'}
 */
export function classifyHttpStatus(status) {
  if (status === 400 || status === 401 || status === 402 || status === 403 || status === 404) return 'refused';
  return 'retry';
}

/**
 * Reconnect delay in ms: exponential from 500 ms, capped at 15 s, with +-25 % jitter.
 * @param {number} attempt  1 for the first retry
 * @param {() => number} random
 */
export function backoffDelay(attempt, random = Math.random) {
  const base = Math.min(15000, 500 * 2 ** Math.max(0, attempt - 1));
  return Math.round(base * (0.75 + 0.5 * random()));
}

/**
 * A short human reason for a refusal.
 * @param {{code?: number, reason?: string, status?: number|null, body?: any, gatewayPresent?: boolean}} info
 *   gatewayPresent: the gateway's /v1/config answered at this address.
 */
export function refusalText({ code, reason, status, body, gatewayPresent }) {
  const msg = (body && (body.err_msg || body.message || body.description)) || reason || '';
  if (status === 401 || status === 403) return `invalid or missing API key${msg ? ` (${msg})` : ''}`;
  if (status === 400) return `the server rejected the stream parameters${msg ? `: ${msg}` : ''}`;
  if (status === 404 && gatewayPresent) {
    return 'the gateway did not accept the stream and the browser cannot see why (check the API key and the engine)';
  }
  if (status === 404) return 'no streaming endpoint at this address';
  if (status) return `HTTP ${status}${msg ? `: ${msg}` : ''}`;
  return `${msg || 'closed by the server'}${code ? ` (close code ${code})` : ''}`;
}
