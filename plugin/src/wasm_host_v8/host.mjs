// A small Proxy-Wasm (ABI 0.2.x) host on V8 (Node's WebAssembly), with Envoy's start order and
// Higress's HTTP filter semantics. It exists to run modules under the engine Envoy uses, with
// Envoy's flags (node --no-liftoff --no-wasm-lazy-compilation): a smoke test of our build, and
// benchmarks that compare it with the original Go build. Behaviour is judged in the wasmtime
// host (plugin/src/wasm_host/); this one stays general and small.
//
// Library:  import { ProxyWasmVm } from "./host.mjs"
// CLI:      node host.mjs run SCENARIO.json    -> JSON result on stdout (see runScenario)
//           node host.mjs bench MODULE.wasm [--vms N] [--events N] [--config JSON]
//                                             -> JSON figures on stdout (see bench)

import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { webcrypto } from "node:crypto";
import { fileURLToPath } from "node:url";

export const Status = { OK: 0, NOT_FOUND: 1, BAD_ARGUMENT: 2, EMPTY: 7, UNIMPLEMENTED: 12 };
export const MapType = { REQUEST_HEADERS: 0, REQUEST_TRAILERS: 1, RESPONSE_HEADERS: 2, RESPONSE_TRAILERS: 3 };
export const BufferType = { REQUEST_BODY: 0, RESPONSE_BODY: 1, VM_CONFIGURATION: 6, PLUGIN_CONFIGURATION: 7 };
export const LogLevel = { TRACE: 0, DEBUG: 1, INFO: 2, WARN: 3, ERROR: 4, CRITICAL: 5 };
const ABI_MARKERS = ["proxy_abi_version_0_2_1", "proxy_abi_version_0_2_100", "proxy_abi_version_0_2_0"];
const WASI = "wasi_snapshot_preview1";
const WASI_EBADF = 8;
const WASI_ENOSYS = 52;
const latin1 = (bytes) => Buffer.from(bytes).toString("latin1");

class ProcExit extends Error {}

/** Proxy-Wasm serialised header map <-> [[name, value], ...] (Latin-1 strings). */
export function encodePairs(pairs) {
  const parts = pairs.map(([k, v]) => [Buffer.from(k, "latin1"), Buffer.from(v, "latin1")]);
  const head = Buffer.alloc(4 + 8 * parts.length);
  head.writeUInt32LE(parts.length, 0);
  parts.forEach(([k, v], i) => {
    head.writeUInt32LE(k.length, 4 + 8 * i);
    head.writeUInt32LE(v.length, 8 + 8 * i);
  });
  const zero = Buffer.alloc(1);
  return Buffer.concat([head, ...parts.flatMap(([k, v]) => [k, zero, v, zero])]);
}

export function decodePairs(buf) {
  const count = buf.readUInt32LE(0);
  let offset = 4 + 8 * count;
  const pairs = [];
  for (let i = 0; i < count; i++) {
    const k = buf.readUInt32LE(4 + 8 * i);
    const v = buf.readUInt32LE(8 + 8 * i);
    const name = buf.subarray(offset, offset + k).toString("latin1");
    offset += k + 1;
    const value = buf.subarray(offset, offset + v).toString("latin1");
    offset += v + 1;
    pairs.push([name, value]);
  }
  return pairs;
}

/** One VM: instance, root context, host state behind the imports. */
export class ProxyWasmVm {
  /**
   * @param {WebAssembly.Module} module compiled module (compile once, instantiate many)
   * @param {object} options pluginConfig (string|Buffer), vmConfig, nowNs () => bigint,
   *   properties {name: string}, logLevel
   */
  constructor(module, options = {}) {
    this.module = module;
    this.pluginConfig = Buffer.from(options.pluginConfig ?? "");
    this.vmConfig = Buffer.from(options.vmConfig ?? "");
    this.nowNs = options.nowNs ?? (() => BigInt(Date.now()) * 1_000_000n);
    this.logLevel = options.logLevel ?? LogLevel.INFO;
    this.vmProperties = {
      plugin_name: "gpustack-token-usage",
      plugin_root_id: "",
      plugin_vm_id: "",
      ...(options.properties ?? {}),
    };
    this.logs = [];
    this.stdout = "";
    this.nextContextId = 1;
    this.contexts = new Map(); // id -> stream state (root has {root: true})
    this.active = null; // the context whose callback is running
    const exportNames = WebAssembly.Module.exports(module).map((e) => e.name);
    this.abiMarker = ABI_MARKERS.find((m) => exportNames.includes(m));
    if (!this.abiMarker) throw new Error("module exports no supported Proxy-Wasm ABI version marker");
  }

  // -- start (proxy-wasm-cpp-host order) --------------------------------------------------
  start() {
    this.instance = new WebAssembly.Instance(this.module, this.#imports());
    this.exports = this.instance.exports;
    this.memory = this.exports.memory;
    this.alloc = this.exports.malloc ?? this.exports.proxy_on_memory_allocate;
    if (this.exports._initialize) {
      this.exports._initialize();
      const main = this.exports.main ?? this.exports.__main_void;
      if (main) main.length === 2 ? main(0, 0) : main();
    } else if (this.exports._start) {
      this.exports._start();
    }
    this.rootId = this.nextContextId++;
    this.contexts.set(this.rootId, { root: true });
    this.#call(this.rootId, "proxy_on_context_create", this.rootId, 0);
    if (!this.#call(this.rootId, "proxy_on_vm_start", this.rootId, this.vmConfig.length)) {
      throw new Error("proxy_on_vm_start returned false" + this.#lastError());
    }
    if (!this.#call(this.rootId, "proxy_on_configure", this.rootId, this.pluginConfig.length)) {
      throw new Error("proxy_on_configure returned false" + this.#lastError());
    }
    return this;
  }

  memoryBytes() {
    return this.memory.buffer.byteLength;
  }

  logMessages(minLevel = LogLevel.TRACE) {
    return this.logs.filter((l) => l.level >= minLevel).map((l) => l.message);
  }

  /** A new HTTP stream (context) under the root. */
  stream({ sourceAddress = "127.0.0.1:40000" } = {}) {
    return new HttpStream(this, sourceAddress);
  }

  #lastError() {
    const errors = this.logMessages(LogLevel.ERROR);
    return errors.length ? ": " + errors[errors.length - 1] : "";
  }

  /** Call an export with `ctx` as the active context; missing exports return `fallback`. */
  call(ctx, name, ...args) {
    return this.#call(ctx, name, ...args);
  }

  #call(ctxId, name, ...args) {
    const fn = this.exports[name];
    if (!fn) return 0;
    const previous = this.active;
    this.active = ctxId;
    try {
      const result = fn(...args);
      return typeof result === "number" ? result : 0;
    } finally {
      this.active = previous;
    }
  }

  // -- memory helpers ---------------------------------------------------------------------
  #bytes() {
    return new Uint8Array(this.memory.buffer);
  }
  #view() {
    return new DataView(this.memory.buffer);
  }
  #read(ptr, len) {
    return Buffer.from(this.#bytes().slice(ptr, ptr + len));
  }
  /** Copy `data` into module memory (allocated by the module) and store ptr/len at the out-pointers. */
  #give(data, ptrOut, lenOut) {
    const bytes = Buffer.from(data);
    const ptr = bytes.length ? this.alloc(bytes.length) : 0;
    if (bytes.length) this.#bytes().set(bytes, ptr);
    const view = this.#view();
    view.setUint32(ptrOut, ptr, true);
    view.setUint32(lenOut, bytes.length, true);
    return Status.OK;
  }
  #ctx() {
    return this.contexts.get(this.active);
  }

  // -- imports ----------------------------------------------------------------------------
  #imports() {
    const env = this.#envImports();
    const wasi = this.#wasiImports();
    const imports = { env: {}, [WASI]: {} };
    for (const imp of WebAssembly.Module.imports(this.module)) {
      if (imp.kind !== "function") throw new Error(`unsupported import ${imp.module}.${imp.name} (${imp.kind})`);
      const table = imp.module === WASI ? wasi : imp.module === "env" ? env : null;
      if (!table) throw new Error(`unknown import module ${imp.module}.${imp.name}`);
      imports[imp.module] ??= {};
      // Anything this host does not implement answers "unimplemented" (or ENOSYS) instead of
      // failing instantiation, as a module may import calls it never makes.
      imports[imp.module][imp.name] =
        table[imp.name] ?? (imp.module === WASI ? () => WASI_ENOSYS : () => Status.UNIMPLEMENTED);
    }
    return imports;
  }

  #buffer(type) {
    const ctx = this.#ctx();
    if (type === BufferType.PLUGIN_CONFIGURATION) return { get: () => this.pluginConfig };
    if (type === BufferType.VM_CONFIGURATION) return { get: () => this.vmConfig };
    const dir = type === BufferType.REQUEST_BODY ? ctx?.request : type === BufferType.RESPONSE_BODY ? ctx?.response : null;
    if (!dir) return null;
    return { get: () => dir.body, set: (b) => (dir.body = b) };
  }

  #map(type) {
    const ctx = this.#ctx();
    if (!ctx || ctx.root) return null;
    const dir = type === MapType.REQUEST_HEADERS || type === MapType.REQUEST_TRAILERS ? ctx.request : ctx.response;
    const key = type === MapType.REQUEST_TRAILERS || type === MapType.RESPONSE_TRAILERS ? "trailers" : "headers";
    return { get: () => dir[key] ?? [], set: (m) => (dir[key] = m) };
  }

  #envImports() {
    const host = this;
    const text = (ptr, len) => latin1(host.#read(ptr, len));
    return {
      proxy_log(level, ptr, len) {
        if (level >= host.logLevel) host.logs.push({ level, message: host.#read(ptr, len).toString("utf8") });
        return Status.OK;
      },
      proxy_get_log_level(out) {
        host.#view().setUint32(out, host.logLevel, true);
        return Status.OK;
      },
      proxy_get_current_time_nanoseconds(out) {
        host.#view().setBigUint64(out, BigInt(host.nowNs()), true);
        return Status.OK;
      },
      proxy_set_tick_period_milliseconds() {
        return Status.OK;
      },
      proxy_set_effective_context(id) {
        if (!host.contexts.has(id)) return Status.BAD_ARGUMENT;
        host.active = id;
        return Status.OK;
      },
      proxy_done() {
        return Status.OK;
      },
      proxy_get_buffer_bytes(type, start, maxSize, ptrOut, lenOut) {
        const buf = host.#buffer(type);
        if (!buf) return Status.NOT_FOUND;
        const data = buf.get();
        if (start > data.length) return Status.BAD_ARGUMENT;
        return host.#give(data.subarray(start, Math.min(data.length, start + maxSize)), ptrOut, lenOut);
      },
      proxy_set_buffer_bytes(type, start, size, ptr, len) {
        const buf = host.#buffer(type);
        if (!buf?.set) return Status.NOT_FOUND;
        const data = buf.get();
        const repl = host.#read(ptr, len);
        buf.set(Buffer.concat([data.subarray(0, start), repl, data.subarray(Math.min(data.length, start + size))]));
        return Status.OK;
      },
      proxy_get_header_map_pairs(type, ptrOut, lenOut) {
        const map = host.#map(type);
        if (!map) return Status.NOT_FOUND;
        return host.#give(encodePairs(map.get()), ptrOut, lenOut);
      },
      proxy_set_header_map_pairs(type, ptr, len) {
        const map = host.#map(type);
        if (!map) return Status.NOT_FOUND;
        map.set(decodePairs(host.#read(ptr, len)));
        return Status.OK;
      },
      proxy_get_header_map_value(type, kPtr, kLen, ptrOut, lenOut) {
        const map = host.#map(type);
        if (!map) return Status.NOT_FOUND;
        const name = text(kPtr, kLen).toLowerCase();
        const found = map.get().find(([k]) => k.toLowerCase() === name);
        if (!found) return Status.NOT_FOUND;
        return host.#give(Buffer.from(found[1], "latin1"), ptrOut, lenOut);
      },
      proxy_add_header_map_value(type, kPtr, kLen, vPtr, vLen) {
        const map = host.#map(type);
        if (!map) return Status.NOT_FOUND;
        map.set([...map.get(), [text(kPtr, kLen).toLowerCase(), text(vPtr, vLen)]]);
        return Status.OK;
      },
      proxy_replace_header_map_value(type, kPtr, kLen, vPtr, vLen) {
        const map = host.#map(type);
        if (!map) return Status.NOT_FOUND;
        const name = text(kPtr, kLen).toLowerCase();
        const rest = map.get().filter(([k]) => k.toLowerCase() !== name);
        map.set([...rest, [name, text(vPtr, vLen)]]);
        return Status.OK;
      },
      proxy_remove_header_map_value(type, kPtr, kLen) {
        const map = host.#map(type);
        if (!map) return Status.NOT_FOUND;
        const name = text(kPtr, kLen).toLowerCase();
        map.set(map.get().filter(([k]) => k.toLowerCase() !== name));
        return Status.OK;
      },
      proxy_get_property(pPtr, pLen, ptrOut, lenOut) {
        const path = text(pPtr, pLen).split("\0").join(".");
        const ctx = host.#ctx();
        const value = ctx?.properties?.[path] ?? host.vmProperties[path];
        if (value === undefined) return Status.NOT_FOUND;
        return host.#give(Buffer.from(value), ptrOut, lenOut);
      },
      proxy_set_property() {
        return Status.OK;
      },
      proxy_continue_stream() {
        return Status.OK;
      },
      proxy_send_local_response(status, dPtr, dLen, bPtr, bLen, hPtr, hLen) {
        const ctx = host.#ctx();
        if (ctx) ctx.localResponse = { status, body: host.#read(bPtr, bLen) };
        return Status.OK;
      },
      proxy_define_metric(type, nPtr, nLen, idOut) {
        host.#view().setUint32(idOut, 1, true);
        return Status.OK;
      },
      proxy_increment_metric() {
        return Status.OK;
      },
      proxy_record_metric() {
        return Status.OK;
      },
      proxy_get_shared_data() {
        return Status.NOT_FOUND;
      },
      proxy_set_shared_data() {
        return Status.OK;
      },
    };
  }

  #wasiImports() {
    const host = this;
    return {
      environ_sizes_get(countOut, sizeOut) {
        host.#view().setUint32(countOut, 0, true);
        host.#view().setUint32(sizeOut, 0, true);
        return 0;
      },
      environ_get() {
        return 0;
      },
      args_sizes_get(countOut, sizeOut) {
        host.#view().setUint32(countOut, 0, true);
        host.#view().setUint32(sizeOut, 0, true);
        return 0;
      },
      args_get() {
        return 0;
      },
      clock_time_get(id, precision, out) {
        host.#view().setBigUint64(out, BigInt(host.nowNs()), true);
        return 0;
      },
      fd_write(fd, iovs, iovsLen, writtenOut) {
        const view = host.#view();
        let written = 0;
        for (let i = 0; i < iovsLen; i++) {
          const ptr = view.getUint32(iovs + 8 * i, true);
          const len = view.getUint32(iovs + 8 * i + 4, true);
          host.stdout += host.#read(ptr, len).toString("utf8");
          written += len;
        }
        view.setUint32(writtenOut, written, true);
        return 0;
      },
      fd_fdstat_get(fd, out) {
        if (fd !== 1 && fd !== 2) return WASI_EBADF;
        host.#bytes().fill(0, out, out + 24);
        host.#view().setUint8(out, 2); // character device
        return 0;
      },
      fd_prestat_get() {
        return WASI_EBADF;
      },
      fd_prestat_dir_name() {
        return WASI_ENOSYS;
      },
      poll_oneoff(inPtr, outPtr, subscriptions, neventsOut) {
        // As Envoy (proxy-wasm-cpp-host): no events, success. The Go runtime sleeps this way.
        host.#view().setUint32(neventsOut, 0, true);
        return 0;
      },
      sched_yield() {
        return 0;
      },
      random_get(ptr, len) {
        webcrypto.getRandomValues(host.#bytes().subarray(ptr, ptr + len));
        return 0;
      },
      proc_exit(code) {
        throw new ProcExit(`proc_exit(${code})`);
      },
    };
  }
}

/** One HTTP stream with Higress semantics: headers StopIteration holds the headers while body
 * callbacks go on; body Pause keeps buffering; Continue lets the (possibly rewritten) buffer out. */
export class HttpStream {
  constructor(vm, sourceAddress) {
    this.vm = vm;
    this.id = vm.nextContextId++;
    this.state = {
      request: { headers: [], body: Buffer.alloc(0), heldHeaders: false, out: null },
      response: { headers: [], body: Buffer.alloc(0), heldHeaders: false, out: null },
      properties: { "source.address": sourceAddress },
    };
    vm.contexts.set(this.id, this.state);
    vm.call(this.id, "proxy_on_context_create", this.id, vm.rootId);
  }

  #headers(dirName, callback, headers, endOfStream) {
    const dir = this.state[dirName];
    dir.headers = headers.map(([k, v]) => [k.toLowerCase(), v]);
    const action = this.vm.call(this.id, callback, this.id, dir.headers.length, endOfStream ? 1 : 0);
    dir.heldHeaders = action !== 0;
    return { callback, action, headers: dir.heldHeaders ? null : dir.headers, body: Buffer.alloc(0) };
  }

  #body(dirName, callback, chunk, endOfStream) {
    const dir = this.state[dirName];
    dir.body = Buffer.concat([dir.body, Buffer.from(chunk)]);
    const action = this.vm.call(this.id, callback, this.id, dir.body.length, endOfStream ? 1 : 0);
    if (action !== 0 && !endOfStream) return { callback, action, headers: null, body: Buffer.alloc(0) };
    const step = { callback, action, headers: dir.heldHeaders ? dir.headers : null, body: dir.body };
    dir.heldHeaders = false;
    dir.body = Buffer.alloc(0);
    return step;
  }

  onRequestHeaders(headers, endOfStream = false) {
    return this.#headers("request", "proxy_on_request_headers", headers, endOfStream);
  }
  onRequestBody(chunk, endOfStream) {
    return this.#body("request", "proxy_on_request_body", chunk, endOfStream);
  }
  onResponseHeaders(headers, endOfStream = false) {
    return this.#headers("response", "proxy_on_response_headers", headers, endOfStream);
  }
  onResponseBody(chunk, endOfStream) {
    return this.#body("response", "proxy_on_response_body", chunk, endOfStream);
  }
  close() {
    this.vm.call(this.id, "proxy_on_done", this.id);
    this.vm.call(this.id, "proxy_on_log", this.id);
    this.vm.call(this.id, "proxy_on_delete", this.id);
    this.vm.contexts.delete(this.id);
  }
}

// -- CLI ------------------------------------------------------------------------------------

/**
 * Scenario JSON: {"wasm": path, "config": string|object, "source_address": "ip:port",
 *   "steps": [{"call": "request_headers"|"request_body"|"response_headers"|"response_body",
 *              "at_ms": number, "headers": [[k, v]], "body_b64": string, "end_of_stream": bool}]}
 * Result: {"steps": [{callback, action, headers, body_b64}], "logs": [{level, message}],
 *          "memory_bytes", "start_ms"}
 */
export function runScenario(scenario) {
  const module = new WebAssembly.Module(readFileSync(scenario.wasm));
  let nowNs = 1_700_000_000_000_000_000n;
  const epoch = nowNs;
  const config = typeof scenario.config === "string" ? scenario.config : JSON.stringify(scenario.config ?? {});
  const started = performance.now();
  const vm = new ProxyWasmVm(module, { pluginConfig: config, nowNs: () => nowNs });
  vm.start();
  const startMs = performance.now() - started;
  const stream = vm.stream({ sourceAddress: scenario.source_address ?? "10.0.0.7:40000" });
  const steps = [];
  for (const step of scenario.steps) {
    if (step.at_ms !== undefined) nowNs = epoch + BigInt(Math.round(step.at_ms * 1e6));
    const body = Buffer.from(step.body_b64 ?? "", "base64");
    const eos = Boolean(step.end_of_stream);
    const result = {
      request_headers: () => stream.onRequestHeaders(step.headers ?? [], eos),
      request_body: () => stream.onRequestBody(body, eos),
      response_headers: () => stream.onResponseHeaders(step.headers ?? [], eos),
      response_body: () => stream.onResponseBody(body, eos),
    }[step.call]();
    steps.push({ callback: result.callback, action: result.action, headers: result.headers, body_b64: result.body.toString("base64") });
  }
  stream.close();
  return { steps, logs: vm.logs, memory_bytes: vm.memoryBytes(), start_ms: startMs, stdout: vm.stdout };
}

const SSE_CONTENT = (i) => `data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"token ${i} "}}]}\n\n`;
const SSE_CONTENT_1K = (i) => `data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"${"x".repeat(900)} ${i}"}}]}\n\n`;
const SSE_USAGE = 'data: {"id":"c","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":100,"total_tokens":112}}\n\ndata: [DONE]\n\n';
const REQUEST_BODY = '{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}';

const percentile = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
const summary = (xs) => ({ p50: percentile(xs, 50), p90: percentile(xs, 90), p99: percentile(xs, 99) });

/** One stream as a gateway sees it; times each response body callback (microseconds) and the
 * whole stream. Requests carry :authority (wasm-go matches its config by host). */
function timedStream(vm, { path, events, chunk }) {
  const stream = vm.stream();
  const body = Buffer.from(REQUEST_BODY);
  const t0 = performance.now();
  stream.onRequestHeaders([
    [":method", "POST"], [":path", path], [":authority", "gateway"], [":scheme", "http"],
    ["content-type", "application/json"], ["content-length", String(body.length)],
  ]);
  stream.onRequestBody(body, true);
  stream.onResponseHeaders([[":status", "200"], ["content-type", "text/event-stream"]]);
  const contentUs = [];
  for (let i = 0; i < events; i++) {
    const data = Buffer.from(chunk(i));
    const t = performance.now();
    stream.onResponseBody(data, false);
    contentUs.push((performance.now() - t) * 1000);
  }
  const usage = Buffer.from(SSE_USAGE);
  const t = performance.now();
  const last = stream.onResponseBody(usage, true);
  const usageUs = (performance.now() - t) * 1000;
  const streamUs = (performance.now() - t0) * 1000;
  stream.close();
  return { contentUs, usageUs, streamUs, injected: last.body.includes("tokens_per_second") };
}

/** VM start (instantiate + start-up callbacks), memory per VM, and per-callback cost of SSE
 * streams: small content events, 1 KiB content events, the usage event, an untracked request,
 * and a whole 200-event stream. Figures only; nothing is asserted. */
export function bench(wasmPath, { vms = 20, events = 200, config = "{}" } = {}) {
  const bytes = readFileSync(wasmPath);
  let t = performance.now();
  const module = new WebAssembly.Module(bytes);
  const compileMs = performance.now() - t;
  const startMs = [];
  const memory = [];
  const live = [];
  for (let i = 0; i < vms; i++) {
    t = performance.now();
    const vm = new ProxyWasmVm(module, { pluginConfig: config }).start();
    startMs.push(performance.now() - t);
    memory.push(vm.memoryBytes());
    live.push(vm);
  }
  const vm = live[0];
  const streams = 20;
  const small = [], large = [], untracked = [], usage = [], whole = [];
  let injected = 0;
  for (let s = 0; s < streams; s++) {
    const a = timedStream(vm, { path: "/v1/chat/completions", events, chunk: SSE_CONTENT });
    small.push(...a.contentUs); usage.push(a.usageUs); whole.push(a.streamUs);
    if (a.injected) injected++;
    large.push(...timedStream(vm, { path: "/v1/chat/completions", events: 50, chunk: SSE_CONTENT_1K }).contentUs);
    untracked.push(...timedStream(vm, { path: "/v1/models", events: 50, chunk: SSE_CONTENT }).contentUs);
  }
  return {
    module: wasmPath,
    module_bytes: bytes.length,
    compile_ms: compileMs,
    vm_start_ms: { p50: percentile(startMs, 50), p90: percentile(startMs, 90), max: Math.max(...startMs), first: startMs[0] },
    memory_per_vm_bytes: { min: Math.min(...memory), max: Math.max(...memory) },
    memory_after_streams_bytes: vm.memoryBytes(),
    streams_with_statistics: `${injected}/${streams}`, // the module really did its work
    sse_content_callback_us: summary(small),
    sse_content_1k_callback_us: summary(large),
    usage_callback_us: summary(usage),
    untracked_callback_us: summary(untracked),
    stream_200_events_us: summary(whole),
    errors: vm.logMessages(LogLevel.ERROR),
  };
}

function main(argv) {
  const [command, ...rest] = argv;
  if (command === "run") {
    const scenario = JSON.parse(readFileSync(rest[0], "utf8"));
    process.stdout.write(JSON.stringify(runScenario(scenario)) + "\n");
    return 0;
  }
  if (command === "bench") {
    const options = {};
    for (let i = 1; i < rest.length; i += 2) {
      const key = rest[i].replace(/^--/, "");
      options[key] = key === "config" ? rest[i + 1] : Number(rest[i + 1]);
    }
    process.stdout.write(JSON.stringify(bench(rest[0], options), null, 2) + "\n");
    return 0;
  }
  process.stderr.write("usage: node host.mjs run SCENARIO.json | bench MODULE.wasm [--vms N] [--events N] [--config JSON]\n");
  return 2;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exitCode = main(process.argv.slice(2));
}
