// Live captions page: microphone -> AudioWorklet (16 kHz linear16) -> /v1/listen -> captions.
import { authProtocols, endpointsFor, withParams } from './endpoints.js';
import { formatLatency, LatencyMeter, LatencyStats } from './latency.js';
import { backoffDelay, classifyClose, classifyHttpStatus, refusalText } from './policy.js';
import { formatTimestamp, Transcript } from './transcript.js';

const TARGET_RATE = 16000;
const CHUNK_MS = 100;
const MAX_QUEUE_SECONDS = 5; // audio kept while (re)connecting, sent once the stream opens
const CLOSE_WAIT_MS = 8000; // how long Stop waits for the last results
const KEEPALIVE_MS = 4000;

const STATES = {
  loading: 'Loading…',
  idle: 'Ready',
  'mic-request': 'Asking for the microphone…',
  'mic-denied': 'Microphone blocked',
  'mic-error': 'Microphone unavailable',
  connecting: 'Connecting…',
  listening: 'Listening',
  reconnecting: 'Reconnecting…',
  refused: 'Refused',
  stopping: 'Finishing…',
  stopped: 'Stopped',
  error: 'Error',
};

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** One WebSocket stream. A session may use several: reconnects, engine switches. */
class Link {
  constructor(app, url, httpUrl, protocols) {
    this.app = app;
    this.url = url;
    this.httpUrl = httpUrl;
    this.opened = false;
    this.retiring = false;
    this.gotResults = false;
    /** @type {number|null} session seconds of this stream's first sample */
    this.offset = null;
    this.sentSamples = 0;
    this.lastSendAt = 0;
    this.meter = new LatencyMeter();
    this.ws = protocols ? new WebSocket(url, protocols) : new WebSocket(url);
    this.ws.binaryType = 'arraybuffer';
    this.ws.onopen = () => {
      this.opened = true;
      app.onOpen(this);
    };
    this.ws.onmessage = (event) => app.onMessage(this, event);
    this.ws.onclose = (event) => app.onClose(this, event);
    this.ws.onerror = () => {}; // a close event always follows
  }

  get isOpen() {
    return this.ws.readyState === WebSocket.OPEN;
  }

  sendAudio(item) {
    if (this.offset === null) this.offset = item.sessionStart;
    this.ws.send(item.pcm);
    this.sentSamples += item.samples;
    this.lastSendAt = performance.now();
    this.meter.markSent(this.sentSamples / TARGET_RATE, this.lastSendAt);
  }

  sendJson(message) {
    if (this.isOpen) this.ws.send(JSON.stringify(message));
  }

  /** Flush and close: the server sends the last Results, Metadata, then closes. */
  finish(onTimeout) {
    if (this.isOpen) {
      this.sendJson({ type: 'CloseStream' });
      this.closeTimer = setTimeout(() => {
        this.ws.close(1000, 'client gave up waiting');
        if (onTimeout) onTimeout();
      }, CLOSE_WAIT_MS);
    } else if (this.ws.readyState === WebSocket.CONNECTING) {
      this.ws.close(1000);
    }
  }
}

class CaptionsApp {
  constructor() {
    this.endpoints = endpointsFor(document.baseURI);
    this.config = null;
    this.transcript = new Transcript();
    this.stats = new LatencyStats();
    this.state = 'loading';
    this.running = false;
    this.stopping = false;
    /** @type {Link|null} */
    this.link = null;
    this.queue = [];
    this.sessionSamples = 0;
    this.attempt = 0;
    this.retryTimer = null;
    this.media = null;
    this.engineShown = '';
    this.finalsRendered = -1;

    this.ui = {
      status: $('status'),
      label: $('status-label'),
      detail: $('status-detail'),
      form: $('controls'),
      keyRow: $('key-row'),
      key: /** @type {HTMLInputElement} */ ($('api-key')),
      engine: /** @type {HTMLSelectElement} */ ($('engine')),
      modelRow: $('model-row'),
      model: /** @type {HTMLSelectElement} */ ($('model')),
      start: /** @type {HTMLButtonElement} */ ($('start')),
      stop: /** @type {HTMLButtonElement} */ ($('stop')),
      level: $('level-bar'),
      engineInfo: $('engine-info'),
      latInterim: $('latency-interim'),
      latFinal: $('latency-final'),
      captions: $('captions'),
      placeholder: $('placeholder'),
      downloads: ['txt', 'srt', 'vtt'].map((kind) => /** @type {HTMLButtonElement} */ ($(`download-${kind}`))),
    };
    this.interimEl = document.createElement('span');
    this.interimEl.id = 'interim';
    this.interimEl.className = 'interim';
    this.interimEl.setAttribute('aria-hidden', 'true');

    this.ui.form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.start();
    });
    this.ui.stop.addEventListener('click', () => this.stop());
    this.ui.engine.addEventListener('change', () => this.onEngineChange());
    this.ui.model.addEventListener('change', () => this.onEngineChange());
    this.ui.downloads[0].addEventListener('click', () => this.download('txt'));
    this.ui.downloads[1].addEventListener('click', () => this.download('srt'));
    this.ui.downloads[2].addEventListener('click', () => this.download('vtt'));
    this.keepAliveTimer = setInterval(() => this.keepAlive(), KEEPALIVE_MS);
  }

  // ---- state --------------------------------------------------------------

  setState(state, detail = '') {
    this.state = state;
    this.ui.status.dataset.state = state;
    this.ui.label.textContent = STATES[state] || state;
    this.ui.detail.textContent = detail;
    this.ui.detail.hidden = !detail;
    this.ui.detail.dataset.state = state;
    const busy = this.running || state === 'mic-request';
    this.ui.start.disabled = busy || state === 'loading';
    this.ui.stop.disabled = !busy;
  }

  async init() {
    let note = '';
    try {
      const response = await fetch(this.endpoints.config, { cache: 'no-store' });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      this.config = await response.json();
    } catch (err) {
      note = `Could not read the gateway configuration (${err.message}); using the server defaults.`;
    }
    const config = this.config || {};
    const storedKey = sessionStorage.getItem('captions.apiKey');
    if (storedKey) this.ui.key.value = storedKey;
    this.ui.keyRow.hidden = !(config.auth_required || !this.config);
    this.ui.key.setAttribute('aria-required', String(Boolean(config.auth_required)));

    const engines = Array.isArray(config.engines) ? config.engines.filter((e) => typeof e === 'string') : [];
    if (engines.length) {
      this.ui.engine.replaceChildren(...engines.map((name) => new Option(name, name)));
      const stored = sessionStorage.getItem('captions.engine');
      const preferred = engines.includes(stored) ? stored : config.default_engine;
      if (engines.includes(preferred)) this.ui.engine.value = preferred;
    }
    // The user may choose only where the gateway offers a choice.
    this.ui.engine.disabled = engines.length < 2;
    this.ui.engine.title = engines.length < 2 ? 'This gateway serves a single engine.' : '';

    // Several models behind one engine: offer them too.
    const models = Array.isArray(config.models) ? config.models.filter((m) => typeof m === 'string') : [];
    if (models.length > 1) {
      this.ui.model.replaceChildren(...models.map((name) => new Option(name, name)));
      const stored = sessionStorage.getItem('captions.model');
      const preferred = models.includes(stored) ? stored : config.default_model;
      if (models.includes(preferred)) this.ui.model.value = preferred;
      this.ui.modelRow.hidden = false;
    }

    const permission = await micPermission();
    if (permission && permission.state === 'denied') {
      this.setState('mic-denied', MIC_DENIED_TEXT);
    } else {
      this.setState('idle', note);
    }
    if (permission) {
      permission.addEventListener('change', () => {
        if (this.state === 'mic-denied' && permission.state !== 'denied') {
          this.setState('idle', 'Microphone allowed: press Start.');
        } else if (!this.running && permission.state === 'denied') {
          this.setState('mic-denied', MIC_DENIED_TEXT);
        }
      });
    }
  }

  // ---- start / stop ---------------------------------------------------------

  async start() {
    if (this.running || this.state === 'mic-request') return;
    const key = this.ui.key.value.trim();
    if (this.config && this.config.auth_required && !key) {
      this.setState('idle', 'This gateway requires an API key: enter it above, then press Start.');
      this.ui.key.focus();
      return;
    }
    try {
      this.protocols = authProtocols(key);
    } catch (err) {
      this.setState('refused', err.message);
      return;
    }
    if (key) sessionStorage.setItem('captions.apiKey', key);
    this.key = key;

    this.setState('mic-request');
    try {
      await this.openMic();
    } catch (err) {
      this.closeMic();
      this.micFailed(err);
      return;
    }
    this.running = true;
    this.stopping = false;
    this.attempt = 0;
    this.queue = [];
    this.connect();
  }

  stop(detail = '') {
    if (!this.running) return;
    this.stopping = true;
    clearTimeout(this.retryTimer);
    this.closeMic();
    this.queue = [];
    const link = this.link;
    if (link && link.isOpen) {
      this.setState('stopping', detail || 'Waiting for the last results…');
      link.finish(() => this.finishStop(detail));
    } else {
      if (link) link.ws.close(1000);
      this.finishStop(detail);
    }
  }

  finishStop(detail = '') {
    if (!this.running) return;
    this.running = false;
    this.stopping = false;
    if (this.link) clearTimeout(this.link.closeTimer);
    this.link = null;
    this.transcript.interim = null;
    this.render();
    this.setState('stopped', detail);
  }

  // ---- microphone -----------------------------------------------------------

  async openMic() {
    if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      const err = new Error('insecure context');
      err.name = 'InsecureContextError';
      throw err;
    }
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: false, autoGainControl: true },
    });
    this.media = { stream };
    const context = new AudioContext({ latencyHint: 'interactive' });
    this.media.context = context;
    await context.audioWorklet.addModule(new URL('./worklet.js', import.meta.url));
    const source = context.createMediaStreamSource(stream);
    const node = new AudioWorkletNode(context, 'linear16-capture', {
      numberOfInputs: 1,
      numberOfOutputs: 1,
      outputChannelCount: [1],
      processorOptions: { targetRate: TARGET_RATE, chunkMs: CHUNK_MS },
    });
    node.port.onmessage = (event) => this.onChunk(event.data);
    source.connect(node);
    node.connect(context.destination); // outputs silence; keeps the node pulled
    Object.assign(this.media, { source, node });
    if (context.state !== 'running') await context.resume();
    for (const track of stream.getAudioTracks()) {
      track.addEventListener('ended', () => {
        if (this.running) this.stop('The microphone was disconnected.');
      });
    }
  }

  closeMic() {
    const media = this.media;
    this.media = null;
    if (!media) return;
    if (media.node) {
      media.node.port.onmessage = null;
      media.node.port.postMessage('stop');
      media.node.disconnect();
    }
    if (media.source) media.source.disconnect();
    if (media.stream) media.stream.getTracks().forEach((t) => t.stop());
    if (media.context) media.context.close().catch(() => {});
    this.ui.level.style.width = '0%';
  }

  micFailed(err) {
    const name = (err && err.name) || '';
    if (name === 'NotAllowedError' || name === 'SecurityError' || name === 'PermissionDeniedError') {
      this.setState('mic-denied', MIC_DENIED_TEXT);
    } else if (name === 'InsecureContextError') {
      this.setState('mic-error', 'The microphone is only available on a secure page: open this page over https:// (or on localhost).');
    } else if (name === 'NotFoundError' || name === 'OverconstrainedError') {
      this.setState('mic-error', 'No microphone was found. Connect one and press Start again.');
    } else if (name === 'NotReadableError' || name === 'AbortError') {
      this.setState('mic-error', 'The microphone could not be opened (is another application using it?).');
    } else {
      this.setState('error', `Audio capture failed: ${err && err.message ? err.message : err}`);
    }
  }

  onChunk(chunk) {
    if (!this.running || !chunk || !chunk.pcm) return;
    const item = { pcm: chunk.pcm, samples: chunk.samples, sessionStart: this.sessionSamples / TARGET_RATE };
    this.sessionSamples += chunk.samples;
    this.showLevel(chunk.rms);
    const link = this.link;
    if (link && link.isOpen && !this.queue.length) {
      link.sendAudio(item);
    } else {
      this.queue.push(item);
      const maxItems = Math.ceil((MAX_QUEUE_SECONDS * 1000) / CHUNK_MS);
      if (this.queue.length > maxItems) this.queue.splice(0, this.queue.length - maxItems);
      if (link && link.isOpen) this.flushQueue(link);
    }
  }

  flushQueue(link) {
    const items = this.queue;
    this.queue = [];
    for (const item of items) link.sendAudio(item);
  }

  showLevel(rms) {
    const db = 20 * Math.log10(Math.max(rms, 1e-6));
    const pct = Math.max(0, Math.min(100, ((db + 60) / 60) * 100));
    this.ui.level.style.width = `${pct.toFixed(0)}%`;
  }

  keepAlive() {
    const link = this.link;
    if (link && link.isOpen && performance.now() - link.lastSendAt > KEEPALIVE_MS - 500) {
      link.sendJson({ type: 'KeepAlive' });
    }
  }

  // ---- connection -----------------------------------------------------------

  selectedEngine() {
    return this.ui.engine.value || '';
  }

  selectedModel() {
    return this.ui.modelRow.hidden ? '' : this.ui.model.value || '';
  }

  connect() {
    clearTimeout(this.retryTimer);
    if (!this.running || this.stopping) return;
    const params = { engine: this.selectedEngine(), model: this.selectedModel() };
    const url = withParams(this.endpoints.listen, params);
    const httpUrl = withParams(this.endpoints.listenHttp, params);
    if (this.attempt === 0) this.setState('connecting');
    else this.ui.label.textContent = 'Reconnecting… (connecting)';
    this.showEngine('');
    try {
      this.link = new Link(this, url, httpUrl, this.protocols);
    } catch (err) {
      this.refuse({ reason: err.message });
    }
  }

  onOpen(link) {
    if (link !== this.link) return;
    this.setState('listening', this.attempt ? `Reconnected after ${this.attempt} attempt(s).` : '');
    this.flushQueue(link);
  }

  onMessage(link, event) {
    if (typeof event.data !== 'string') return;
    let msg;
    try {
      msg = JSON.parse(event.data);
    } catch {
      return;
    }
    if (!msg || typeof msg !== 'object') return;
    switch (msg.type) {
      case 'Results': {
        if (!link.gotResults) {
          link.gotResults = true;
          if (link === this.link) this.attempt = 0; // a healthy stream resets the backoff
        }
        const applied = this.transcript.apply(msg, link.offset || 0);
        const end = Number(msg.start || 0) + Number(msg.duration || 0);
        const latency = link.meter.measure(end, performance.now());
        if (latency !== null) this.stats.add(msg.is_final ? 'final' : 'interim', latency);
        const info = msg.metadata && msg.metadata.model_info;
        if (link === this.link && info && info.name && !link.engineInfo) {
          this.showEngine(describeEngine(this.selectedEngine(), info.name));
        }
        this.render(applied.kind === 'final');
        this.showLatency();
        break;
      }
      case 'EngineInfo':
        link.engineInfo = msg;
        if (link === this.link) this.showEngine(describeEngine(msg.engine, msg.model));
        break;
      case 'UtteranceEnd':
        this.transcript.endUtterance();
        this.render(true);
        break;
      case 'Error':
        this.ui.detail.hidden = false;
        this.ui.detail.textContent = `Gateway error: ${msg.description || msg.message || msg.variant || 'unknown'}`;
        break;
      default:
        break; // Metadata, SpeechStarted and unknown types: nothing to show
    }
  }

  onClose(link, event) {
    clearTimeout(link.closeTimer);
    if (link !== this.link) {
      this.render(true); // a retired stream (engine switch) finished flushing
      return;
    }
    this.link = null;
    this.transcript.endUtterance();
    this.transcript.interim = null;
    this.render(true);
    const decision = classifyClose({ code: event.code, reason: event.reason, opened: link.opened, stopping: this.stopping });
    if (decision === 'done') {
      this.finishStop();
    } else if (decision === 'refused') {
      this.refuse({ code: event.code, reason: event.reason });
    } else if (decision === 'handshake') {
      this.diagnose(link);
    } else {
      const why = event.reason ? `${event.reason} (code ${event.code})` : `code ${event.code}`;
      this.scheduleRetry(`The connection was lost: ${why}.`);
    }
  }

  /** Browsers hide why a handshake failed: ask the same URL over plain HTTP. */
  async diagnose(link) {
    let status = null;
    let body = null;
    try {
      const headers = this.key ? { Authorization: `Token ${this.key}` } : {};
      const response = await fetch(link.httpUrl, { headers, cache: 'no-store' });
      status = response.status;
      try {
        body = await response.json();
      } catch {
        body = { err_msg: response.headers.get('dg-error') || '' };
      }
    } catch {
      status = null;
    }
    if (!this.running || this.stopping || this.link) return;
    if (classifyHttpStatus(status) === 'refused') {
      // A 404 from a gateway whose /v1/config answered: it predates the plain-GET check.
      this.refuse({ status, body, gatewayPresent: Boolean(this.config) });
    } else {
      this.scheduleRetry(status ? `Could not open the stream (HTTP ${status}).` : 'The gateway cannot be reached.');
    }
  }

  scheduleRetry(why) {
    this.attempt += 1;
    const delay = backoffDelay(this.attempt);
    this.setState('reconnecting', `${why} Retrying in ${(delay / 1000).toFixed(1)} s (attempt ${this.attempt}).`);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  refuse(info) {
    clearTimeout(this.retryTimer);
    this.running = false;
    this.stopping = false;
    this.link = null;
    this.queue = [];
    this.closeMic();
    this.showEngine('');
    if (info.status === 401 || info.status === 403) {
      this.ui.keyRow.hidden = false;
      sessionStorage.removeItem('captions.apiKey');
    }
    this.setState('refused', `The gateway refused the stream: ${refusalText(info)}.`);
  }

  onEngineChange() {
    sessionStorage.setItem('captions.engine', this.selectedEngine());
    sessionStorage.setItem('captions.model', this.selectedModel());
    if (!this.running || this.stopping) return;
    // Let the old stream flush its last words while the new one starts.
    const old = this.link;
    if (old) {
      old.retiring = true;
      old.finish();
    }
    this.link = null;
    this.attempt = 0;
    this.connect();
  }

  showEngine(text) {
    this.engineShown = text;
    this.ui.engineInfo.textContent = text || (this.running ? '…' : '–');
  }

  showLatency() {
    this.ui.latInterim.textContent = formatLatency(this.stats.median('interim'));
    this.ui.latFinal.textContent = formatLatency(this.stats.median('final'));
    this.ui.latInterim.title = `last ${formatLatency(this.stats.last('interim'))}`;
    this.ui.latFinal.title = `last ${formatLatency(this.stats.last('final'))}`;
  }

  // ---- captions -------------------------------------------------------------

  render(finalsChanged = false) {
    const captions = this.ui.captions;
    const atBottom = captions.scrollHeight - captions.scrollTop - captions.clientHeight < 40;
    const segments = this.transcript.segments;
    if (finalsChanged || this.finalsRendered !== segments.length) {
      const paragraphs = this.transcript.utterances().map((utterance) => {
        const p = document.createElement('p');
        p.className = 'utterance';
        utterance.forEach((seg, i) => {
          const span = document.createElement('span');
          span.className = 'final';
          span.textContent = seg.text;
          span.title = `${formatTimestamp(seg.start, '.')} – ${formatTimestamp(seg.end, '.')}`;
          if (i) p.append(' ');
          p.append(span);
        });
        if (utterance[utterance.length - 1].endsUtterance) p.classList.add('closed');
        return p;
      });
      captions.replaceChildren(...paragraphs);
      this.finalsRendered = segments.length;
      for (const button of this.ui.downloads) button.disabled = segments.length === 0;
    }
    const interim = this.transcript.interim;
    if (this.interimEl.parentNode) {
      const host = this.interimEl.parentNode;
      this.interimEl.remove();
      if (host instanceof HTMLElement && host.classList.contains('pending')) host.remove();
    }
    if (interim) {
      // Provisional words continue the open utterance, or start a new line.
      let host = captions.lastElementChild;
      if (!host || host.classList.contains('closed') || host === this.ui.placeholder) {
        host = document.createElement('p');
        host.className = 'utterance pending';
        captions.append(host);
      }
      this.interimEl.textContent = (host.childNodes.length ? ' ' : '') + interim.text;
      host.append(this.interimEl);
    } else {
      this.interimEl.textContent = '';
    }
    const empty = !captions.querySelector('.utterance');
    if (empty && !this.ui.placeholder.parentNode) captions.append(this.ui.placeholder);
    if (!empty && this.ui.placeholder.parentNode) this.ui.placeholder.remove();
    if (atBottom) captions.scrollTop = captions.scrollHeight;
  }

  // ---- downloads ------------------------------------------------------------

  download(kind) {
    const t = this.transcript;
    const [body, type] = kind === 'srt' ? [t.toSRT(), 'application/x-subrip']
      : kind === 'vtt' ? [t.toVTT(), 'text/vtt'] : [t.toText(), 'text/plain'];
    const blob = new Blob([body], { type: `${type};charset=utf-8` });
    const url = URL.createObjectURL(blob);
    const a = document.createElement('a');
    a.href = url;
    a.download = `transcript-${fileStamp(new Date())}.${kind}`;
    a.hidden = true;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  }
}

const MIC_DENIED_TEXT = 'Microphone access is blocked for this page. Allow it (the microphone icon in the '
  + 'address bar, or the site settings), then press Start again. Captions need the microphone.';

function describeEngine(engine, model) {
  if (engine && model && engine !== model) return `${engine} (${model})`;
  return engine || model || '';
}

function fileStamp(d) {
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

/** @returns {Promise<PermissionStatus|null>} */
async function micPermission() {
  try {
    return await navigator.permissions.query({ name: 'microphone' });
  } catch {
    return null; // the browser cannot tell before asking
  }
}

const app = new CaptionsApp();
window.captionsApp = app; // for debugging in the console
app.init();
