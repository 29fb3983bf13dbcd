// AudioWorklet: microphone -> mono -> 16 kHz -> linear16 chunks posted to the page.
import { Resampler, downmix, toLinear16 } from './resampler.js';

class Linear16Capture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = (options && options.processorOptions) || {};
    this.targetRate = opts.targetRate || 16000;
    this.chunkSamples = Math.round((this.targetRate * (opts.chunkMs || 100)) / 1000);
    // `sampleRate` is the AudioContext's rate (a global of the worklet scope).
    this.resampler = new Resampler(sampleRate, this.targetRate);
    this.pending = new Float32Array(this.chunkSamples);
    this.filled = 0;
    this.running = true;
    this.port.onmessage = (event) => {
      if (event.data === 'stop') this.running = false;
    };
  }

  process(inputs) {
    if (!this.running) return false;
    const input = inputs[0];
    if (!input || input.length === 0) return true; // no source connected (yet)
    let samples = this.resampler.process(downmix(input));
    while (samples.length) {
      const n = Math.min(samples.length, this.chunkSamples - this.filled);
      this.pending.set(samples.subarray(0, n), this.filled);
      this.filled += n;
      samples = samples.subarray(n);
      if (this.filled === this.chunkSamples) this.flush();
    }
    return true;
  }

  flush() {
    const chunk = this.pending;
    let sum = 0;
    let peak = 0;
    for (let i = 0; i < chunk.length; i += 1) {
      const v = chunk[i];
      sum += v * v;
      const a = v < 0 ? -v : v;
      if (a > peak) peak = a;
    }
    const pcm = toLinear16(chunk);
    this.port.postMessage(
      { pcm, samples: chunk.length, rms: Math.sqrt(sum / chunk.length), peak, at: currentTime },
      [pcm],
    );
    this.filled = 0;
  }
}

registerProcessor('linear16-capture', Linear16Capture);
