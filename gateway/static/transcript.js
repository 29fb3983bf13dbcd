// The session's transcript: finals in time order plus the current interim,
// and the text / SRT / WebVTT exports built from the words' times.
//
// Times are session seconds: a stream's Results times (seconds since that
// stream's first sample) plus the offset of that stream in the session, so a
// reconnect or an engine switch does not restart the clock.

/**
 * @typedef {{text: string, start: number, end: number, confidence?: number}} Word
 * @typedef {{text: string, start: number, end: number, words: Word[], endsUtterance: boolean}} Segment
 * @typedef {{text: string, start: number, end: number}} Cue
 */

export class Transcript {
  constructor() {
    /** @type {Segment[]} finals, sorted by start */
    this.segments = [];
    /** @type {Segment|null} the provisional text of the span being spoken */
    this.interim = null;
  }

  /**
   * Apply one server message.
   * @param {any} msg  a parsed message; only type "Results" is used
   * @param {number} offset  session seconds at which the message's stream began
   * @returns {{kind: 'interim'|'final'|'none', segment?: Segment}}
   */
  apply(msg, offset = 0) {
    if (!msg || msg.type !== 'Results') return { kind: 'none' };
    const alt = (msg.channel && msg.channel.alternatives && msg.channel.alternatives[0]) || {};
    const text = String(alt.transcript || '').trim();
    const start = offset + Number(msg.start || 0);
    const end = start + Number(msg.duration || 0);
    const words = (alt.words || []).map((w) => ({
      text: String(w.punctuated_word || w.word || ''),
      start: offset + Number(w.start),
      end: offset + Number(w.end),
      confidence: w.confidence,
    })).filter((w) => w.text && Number.isFinite(w.start) && Number.isFinite(w.end));

    if (!msg.is_final) {
      this.interim = text ? { text, start, end, words, endsUtterance: false } : null;
      return { kind: 'interim', segment: this.interim || undefined };
    }
    this.interim = null;
    if (!text) {
      // An empty final that closes an utterance ends the previous line.
      if (msg.speech_final) this.endUtterance();
      return { kind: 'final' };
    }
    const segment = { text, start, end, words, endsUtterance: Boolean(msg.speech_final) };
    let i = this.segments.length;
    while (i > 0 && this.segments[i - 1].start > start) i -= 1;
    this.segments.splice(i, 0, segment);
    return { kind: 'final', segment };
  }

  /** Close the current utterance (a stream ended, an endpoint was signalled). */
  endUtterance() {
    const last = this.segments[this.segments.length - 1];
    if (last) last.endsUtterance = true;
    this.interim = null;
  }

  /** @returns {Segment[][]} finals grouped into utterances */
  utterances() {
    const out = [];
    let cur = [];
    for (const seg of this.segments) {
      cur.push(seg);
      if (seg.endsUtterance) {
        out.push(cur);
        cur = [];
      }
    }
    if (cur.length) out.push(cur);
    return out;
  }

  /** Plain text: one line per utterance. */
  toText() {
    return this.utterances().map((u) => u.map((s) => s.text).join(' ')).join('\n') + (this.segments.length ? '\n' : '');
  }

  /** @returns {Cue[]} */
  cues(options) {
    return buildCues(this.utterances(), options);
  }

  toSRT(options) {
    return formatSRT(this.cues(options));
  }

  toVTT(options) {
    return formatVTT(this.cues(options));
  }
}

const SENTENCE_END = /[.?!…]["')\]]*$/;

/**
 * Split utterances into subtitle cues using word times: a cue ends at the end
 * of an utterance, after a sentence, before a pause longer than maxGap, or
 * when it would exceed maxDuration seconds or maxChars characters.
 * @param {Segment[][]} utterances
 * @returns {Cue[]}
 */
export function buildCues(utterances, { maxDuration = 6, maxChars = 84, maxGap = 1.2, minDuration = 0.7 } = {}) {
  /** @type {Cue[]} */
  const cues = [];
  for (const utterance of utterances) {
    /** @type {Cue|null} */
    let cue = null;
    for (const seg of utterance) {
      const words = seg.words.length ? seg.words : [{ text: seg.text, start: seg.start, end: seg.end }];
      for (const w of words) {
        if (cue && (w.start - cue.end > maxGap || w.end - cue.start > maxDuration
          || cue.text.length + 1 + w.text.length > maxChars || SENTENCE_END.test(cue.text))) {
          cues.push(cue);
          cue = null;
        }
        if (!cue) cue = { text: w.text, start: w.start, end: Math.max(w.start, w.end) };
        else {
          cue.text += ` ${w.text}`;
          cue.end = Math.max(cue.end, w.end);
        }
      }
    }
    if (cue) cues.push(cue);
  }
  cues.sort((a, b) => a.start - b.start);
  // Readable minimum duration, without overlapping the next cue.
  for (let i = 0; i < cues.length; i += 1) {
    const next = cues[i + 1];
    const limit = next ? next.start : Infinity;
    if (cues[i].end - cues[i].start < minDuration) cues[i].end = Math.min(cues[i].start + minDuration, limit);
    if (cues[i].end <= cues[i].start) cues[i].end = cues[i].start + 0.001;
  }
  return cues;
}

/**
 * @param {number} seconds
 * @param {',' | '.'} sep  ',' for SRT, '.' for WebVTT
 */
export function formatTimestamp(seconds, sep) {
  const total = Math.max(0, Math.round(seconds * 1000));
  const ms = total % 1000;
  const s = Math.floor(total / 1000) % 60;
  const m = Math.floor(total / 60000) % 60;
  const h = Math.floor(total / 3600000);
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return `${p(h)}:${p(m)}:${p(s)}${sep}${p(ms, 3)}`;
}

/** Break a long cue into two lines near the middle. */
export function wrapCueText(text, maxLine = 42) {
  if (text.length <= maxLine) return text;
  const mid = text.length / 2;
  let best = -1;
  for (let i = text.indexOf(' '); i !== -1; i = text.indexOf(' ', i + 1)) {
    if (best === -1 || Math.abs(i - mid) < Math.abs(best - mid)) best = i;
  }
  return best === -1 ? text : `${text.slice(0, best)}\n${text.slice(best + 1)}`;
}

/** @param {Cue[]} cues */
export function formatSRT(cues) {
  return cues.map((c, i) => `${i + 1}\n${formatTimestamp(c.start, ',')} --> ${formatTimestamp(c.end, ',')}\n`
    + `${wrapCueText(c.text.replace(/-->/g, '->'))}\n`).join('\n');
}

function escapeVTT(text) {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** @param {Cue[]} cues */
export function formatVTT(cues) {
  return `WEBVTT\n\n${cues.map((c) => `${formatTimestamp(c.start, '.')} --> ${formatTimestamp(c.end, '.')}\n`
    + `${wrapCueText(escapeVTT(c.text))}\n`).join('\n')}`;
}
