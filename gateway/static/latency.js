// Measured latency: for each Results message, the time between handing the
// last audio sample it covers (start + duration, on the stream's audio clock)
// to the WebSocket and receiving the message.

export class LatencyMeter {
  constructor({ keepSeconds = 120 } = {}) {
    /** @type {{end: number, at: number}[]} audio end (stream seconds) of each sent chunk and when it was sent (ms) */
    this.marks = [];
    this.keepSeconds = keepSeconds;
  }

  /** Record that audio up to `audioEnd` stream seconds was sent at `at` ms. */
  markSent(audioEnd, at) {
    this.marks.push({ end: audioEnd, at });
  }

  /**
   * Latency of a result covering audio up to `resultEnd` received at `now` ms,
   * or null when no sent audio is known to cover it.
   * @param {number} resultEnd  Results start + duration, stream seconds
   * @param {number} now
   */
  measure(resultEnd, now) {
    const marks = this.marks;
    if (!marks.length || !(resultEnd > 0)) return null;
    // First chunk whose end reaches the result's end (binary search; marks are increasing).
    let lo = 0;
    let hi = marks.length - 1;
    const target = resultEnd - 0.0005;
    if (marks[hi].end < target) lo = hi;
    else {
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (marks[mid].end >= target) hi = mid;
        else lo = mid + 1;
      }
    }
    const value = Math.max(0, now - marks[lo].at);
    // Forget marks far behind the audio results now cover.
    let drop = 0;
    while (drop < marks.length - 1 && marks[drop].end < resultEnd - this.keepSeconds) drop += 1;
    if (drop) marks.splice(0, drop);
    return value;
  }
}

/** Recent latencies of the session, per kind of result. */
export class LatencyStats {
  constructor(window = 20) {
    this.window = window;
    /** @type {{interim: number[], final: number[]}} ms */
    this.recent = { interim: [], final: [] };
  }

  /** @param {'interim'|'final'} kind */
  add(kind, value) {
    const list = this.recent[kind];
    list.push(value);
    if (list.length > this.window) list.shift();
  }

  /** Median of the recent values of one kind, or null. */
  median(kind) {
    const list = [...this.recent[kind]].sort((a, b) => a - b);
    if (!list.length) return null;
    const mid = list.length >> 1;
    return list.length % 2 ? list[mid] : (list[mid - 1] + list[mid]) / 2;
  }

  last(kind) {
    const list = this.recent[kind];
    return list.length ? list[list.length - 1] : null;
  }
}

/** "840 ms" or "1.6 s" */
export function formatLatency(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}
