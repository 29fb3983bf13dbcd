// Streaming sample-rate conversion to 16 kHz and float -> linear16.
// Pure: used by the AudioWorklet (worklet.js) and by the unit tests.

/**
 * Arbitrary-ratio windowed-sinc resampler (Blackman window), streaming: call
 * process() with consecutive blocks; the output is continuous across calls.
 * When downsampling, the kernel's cut-off sits below the output Nyquist so
 * that the 8 kHz band limit of 16 kHz audio does not alias.
 */
export class Resampler {
  /**
   * @param {number} inRate
   * @param {number} outRate
   * @param {{zeroCrossings?: number, rolloff?: number, phases?: number}} [options]
   */
  constructor(inRate, outRate, { zeroCrossings = 16, rolloff = 0.92, phases = 256 } = {}) {
    if (!(inRate > 0) || !(outRate > 0)) throw new RangeError('sample rates must be positive');
    this.inRate = inRate;
    this.outRate = outRate;
    this.step = inRate / outRate; // input samples per output sample
    this.passthrough = inRate === outRate;
    // Cut-off as a fraction of the input Nyquist frequency.
    this.cutoff = Math.min(1, outRate / inRate) * rolloff;
    // Kernel half-width in input samples.
    this.halfWidth = zeroCrossings / this.cutoff;
    this.phases = phases;
    const n = Math.ceil(this.halfWidth * phases) + 2;
    this.table = new Float32Array(n);
    for (let i = 0; i < n; i += 1) this.table[i] = this.kernel(i / phases);
    // Input history: buffer[0] is absolute input sample number `bufferStart`.
    this.buffer = new Float32Array(4096);
    this.bufferLength = 0;
    this.bufferStart = 0;
    this.outCount = 0; // output samples produced so far
  }

  /** Low-pass kernel at distance x (input samples) from the output instant. */
  kernel(x) {
    const ax = Math.abs(x);
    if (ax >= this.halfWidth) return 0;
    const fc = this.cutoff;
    const arg = Math.PI * fc * ax;
    const sinc = ax < 1e-9 ? 1 : Math.sin(arg) / arg;
    const t = ax / this.halfWidth; // 0..1
    const window = 0.42 + 0.5 * Math.cos(Math.PI * t) + 0.08 * Math.cos(2 * Math.PI * t);
    return fc * sinc * window;
  }

  tap(x) {
    const pos = Math.abs(x) * this.phases;
    const i = Math.floor(pos);
    if (i + 1 >= this.table.length) return 0;
    const frac = pos - i;
    return this.table[i] + (this.table[i + 1] - this.table[i]) * frac;
  }

  /**
   * @param {Float32Array} input  the next block of mono samples at inRate
   * @returns {Float32Array} the output samples at outRate that can be computed so far
   */
  process(input) {
    if (this.passthrough) return Float32Array.from(input);
    this.append(input);
    const inEnd = this.bufferStart + this.bufferLength; // absolute index one past the last input
    const hw = this.halfWidth;
    // Output n sits at input position n * step; it needs inputs up to floor(n * step + hw).
    const last = Math.floor((inEnd - 1 - hw) / this.step);
    const count = Math.max(0, last - this.outCount + 1);
    const out = new Float32Array(count);
    const buf = this.buffer;
    const base = this.bufferStart;
    for (let j = 0; j < count; j += 1) {
      const t = (this.outCount + j) * this.step;
      const k0 = Math.max(base, Math.ceil(t - hw));
      const k1 = Math.min(inEnd - 1, Math.floor(t + hw));
      let acc = 0;
      for (let k = k0; k <= k1; k += 1) acc += buf[k - base] * this.tap(t - k);
      out[j] = acc;
    }
    this.outCount += count;
    // Drop input no later output can reach.
    const keepFrom = Math.max(this.bufferStart, Math.ceil(this.outCount * this.step - hw) - 1);
    this.discard(keepFrom - this.bufferStart);
    return out;
  }

  append(input) {
    if (this.bufferLength + input.length > this.buffer.length) {
      const grown = new Float32Array(Math.max(this.buffer.length * 2, this.bufferLength + input.length));
      grown.set(this.buffer.subarray(0, this.bufferLength));
      this.buffer = grown;
    }
    this.buffer.set(input, this.bufferLength);
    this.bufferLength += input.length;
  }

  discard(n) {
    if (n <= 0) return;
    this.buffer.copyWithin(0, n, this.bufferLength);
    this.bufferLength -= n;
    this.bufferStart += n;
  }
}

/**
 * Float samples in [-1, 1] to little-endian signed 16-bit PCM (linear16).
 * @param {Float32Array} samples
 * @returns {ArrayBuffer}
 */
export function toLinear16(samples) {
  const out = new ArrayBuffer(samples.length * 2);
  const view = new DataView(out);
  for (let i = 0; i < samples.length; i += 1) {
    const s = Math.max(-1, Math.min(1, samples[i] || 0));
    view.setInt16(i * 2, Math.round(s < 0 ? s * 0x8000 : s * 0x7fff), true);
  }
  return out;
}

/** Mix the channels of one render quantum down to mono. */
export function downmix(channels) {
  if (channels.length === 1) return channels[0];
  const out = new Float32Array(channels[0].length);
  for (const ch of channels) for (let i = 0; i < out.length; i += 1) out[i] += ch[i];
  for (let i = 0; i < out.length; i += 1) out[i] /= channels.length;
  return out;
}
