import { createRequire } from 'node:module';
import { readFile, realpath } from 'node:fs/promises';
import path from 'node:path';

/**
 * The in-box host for guest JavaScript: a Node program that runs the guest in QuickJS (quickjs-ng compiled to
 * WebAssembly), so guest code has no `require`, `process`, network or timers even before the OS boundary.
 * The box still is the boundary: this program only removes what guest JavaScript can name.
 *
 * Run as `node <QUICKJS_NODE_FLAGS...> /box/host.cjs <qjsRoot> <boxDir> <workDir>` (in the box: `/qjs /box
 * /work`). File descriptors: 1 and 2 are the guest's stdout and stderr, 3 the result channel (written), 4 the
 * go channel (read). Protocol:
 *   1. Closes inherited descriptors above 4 that lack close-on-exec, loads and warms the QuickJS module,
 *      prepares a fresh runtime and context for the job, then writes `READY_MARKER` to fd 3.
 *   2. Reads one line `<memoryBytes> <timeoutMs>\n` from fd 4 (decimal; memoryBytes 0 = no heap cap). EOF first:
 *      exits 0 without writing anything more (the pool discarded the box). A malformed line: an `exception`
 *      report, exit 1.
 *   3. Reads `<boxDir>/code.js` and `<boxDir>/input.json`, runs the code as the body of an async function and
 *      writes exactly one JSON report to fd 3: `{"status":"ok","value":...}` (exit 0) or
 *      `{"status":"error","kind":"exception"|"result"|"memory"|"timeout","message":"..."}` (exit 1).
 *
 * Guest semantics follow `JAVASCRIPT_WRAPPER`: `return value`, top-level `await`, the global `result` (or the
 * code's own `let result`), `input`, `files`, and a `console` whose `log`/`info`/`debug` write to stdout and
 * `error`/`warn` to stderr. There is no `require`, `process`, `setTimeout`, `fetch` or `WebAssembly`.
 *
 * Things measured on quickjs-ng 0.32.0 that shaped the program (see the comments in it for details):
 * - QuickJS's `Function`/`AsyncFunction` constructor splices the body into a source string and evaluates it,
 *   so `}); evil(); (async function(){` passes it and runs `evil()`. The host instead declares the program
 *   as a block-scoped function whose first statement (a gate with an unguessable name) checks, before any
 *   guest statement can run, that the function's source text is exactly the whole code.
 * - `setMemoryLimit` in this WebAssembly build counts about 8 bytes per allocation (the allocator reports no
 *   usable size), so it does not bound bytes. The host also caps the growth of the WebAssembly memory the
 *   QuickJS heap lives in, which bounds everything, ArrayBuffers included.
 * - Deep guest recursion in the interpreter uses two to five times as much native (V8) stack as QuickJS
 *   stack, so the V8 stack is raised (`--stack-size`) and the QuickJS stack capped well below it. Paths that
 *   use even more native stack (JSON.parse/JSON.stringify of million-deep arrays) still overflow V8's stack;
 *   the host reports that as a `RangeError` exception without touching the engine again.
 */
export const QUICKJS_HOST = String.raw`'use strict';
const fs = require('node:fs');

const RESULT_FD = 3;
const GO_FD = 4;
const READY_MARKER = '\u0000tandem:ready\n';
const MESSAGE_LIMIT = 2000;
// QuickJS stack cap. Guest recursion uses native (V8) stack too: ~2 bytes per byte of QuickJS stack for plain
// calls, up to ~5 for nested toString/join. With V8's stack at ~3.9 MiB (--stack-size=4000), 768 KiB lets
// ~4900 plain frames deep and makes overflow a catchable RangeError on every path measured but
// JSON.parse/JSON.stringify of million-deep arrays, which overflow V8's stack (see hostFailure).
const MAX_STACK_BYTES = 768 * 1024;
// Pending jobs run in batches of this many, with the deadline checked between batches.
const JOB_BATCH = 128;
// Extra WebAssembly memory allowed after the guest first hits its heap cap: room for the engine to build
// the out-of-memory error, unwind and report.
const EMERGENCY_HEAP_BYTES = 8 * 1024 * 1024;
const WASM_PAGE_BYTES = 65536;
// The bootstrap's file name in QuickJS stack traces; its frames are not printed.
const BOOTSTRAP_FILE = 'tandem:host';

// The engine library logs its own internal failures with console.error, host stack and all; that would land
// in the guest's stderr. The report says what failed instead.
for (const method of ['log', 'info', 'debug', 'warn', 'error', 'trace']) console[method] = () => {};

const qjsRoot = process.argv[2];
const boxDir = process.argv[3];
const workDir = process.argv[4];

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
function pause(ms) {
  Atomics.wait(sleepCell, 0, 0, ms);
}

// Synchronous, so nothing is lost at exit; EAGAIN (a non-blocking descriptor) is retried after a pause.
function writeAll(fd, bytes) {
  let offset = 0;
  while (offset < bytes.length) {
    try {
      offset += fs.writeSync(fd, bytes, offset, bytes.length - offset);
    } catch (error) {
      if (error && error.code === 'EAGAIN') {
        pause(1);
        continue;
      }
      throw error;
    }
  }
}

const outputClosed = { 1: false, 2: false };
// Guest output: once a stream fails (the supervisor closed it), later output to it is dropped.
function output(fd, text) {
  if (outputClosed[fd] || text === '') return;
  try {
    writeAll(fd, Buffer.from(text, 'utf8'));
  } catch {
    outputClosed[fd] = true;
  }
}

function send(text) {
  writeAll(RESULT_FD, Buffer.from(text, 'utf8'));
}

let reported = false;
function finish(report, code) {
  if (!reported) {
    reported = true;
    try {
      send(report);
    } catch {
      code = 1;
    }
  }
  // Closing the result channel tells the supervisor the job is over (guest output was written synchronously
  // before the report, and no guest code runs after it): it may end the box without waiting for Node's exit.
  try {
    fs.closeSync(RESULT_FD);
  } catch {}
  process.exit(code);
}

function clip(message) {
  return message.length > MESSAGE_LIMIT ? message.slice(0, MESSAGE_LIMIT) : message;
}

function reportError(kind, message) {
  finish(JSON.stringify({ status: 'error', kind, message: clip(String(message)) }), 1);
}

// Job state the interrupt handler and the heap cap read.
let deadline = Infinity;
let timeLimitMs = 0;
let timedOut = false;
let heapCap = Infinity;
let heapExceeded = false;
let stopForHeap = false;
let uncapped = 0;
let memoryBytes = 0;

function reportTimeout() {
  timedOut = true;
  reportError('timeout', 'the program exceeded its time limit of ' + timeLimitMs + ' ms');
}

// QuickJS's out-of-memory error, as describe() puts it.
const OUT_OF_MEMORY = 'InternalError: out of memory';

function memoryMessage() {
  return OUT_OF_MEMORY + (memoryBytes > 0 ? ' (the limit is ' + memoryBytes + ' bytes)' : '');
}

function reportMemory() {
  output(2, memoryMessage() + '\n');
  reportError('memory', memoryMessage());
}

// Anything thrown in the host itself. The engine may be mid-operation (a native stack overflow unwinds
// through WebAssembly frames), so nothing here calls into QuickJS again.
function hostFailure(error) {
  if (reported) process.exit(1);
  if (timedOut || Date.now() > deadline) reportTimeout();
  if (heapExceeded) reportMemory();
  let message;
  if (error instanceof RangeError && /call stack/i.test(String(error.message))) {
    message = 'RangeError: Maximum call stack size exceeded';
  } else {
    const what = error instanceof Error ? error.name + ': ' + error.message : String(error);
    message = 'InternalError: the JavaScript sandbox host failed (' + what + ')';
  }
  output(2, message + '\n');
  reportError('exception', message);
}

// Node passes every descriptor without close-on-exec on to its children; such a descriptor above 4 came
// from whatever started the runner (seen: a pipe from the process supervisor) and is closed here.
function closeInheritedDescriptors() {
  for (const name of fs.readdirSync('/proc/self/fd')) {
    const fd = Number(name);
    if (!(fd > GO_FD)) continue;
    let info;
    try {
      info = fs.readFileSync('/proc/self/fdinfo/' + name, 'utf8');
    } catch {
      continue;
    }
    const flags = /^flags:\s*([0-7]+)/m.exec(info);
    if (flags && (parseInt(flags[1], 8) & 0o2000000) === 0) {
      try {
        fs.closeSync(fd);
      } catch {}
    }
  }
}

// The variant's own loader imports its Emscripten module with a dynamic import(), which starts Node's ESM
// loader (measurable CPU); the same CommonJS build is required directly instead.
function loadEngine() {
  const core = require(qjsRoot + '/node_modules/quickjs-emscripten-core');
  const variantDir = qjsRoot + '/node_modules/@jitl/quickjs-ng-wasmfile-release-sync';
  const variant = require(variantDir).default;
  const emscriptenModule = require(variantDir + '/dist/emscripten-module.cjs');
  return core.newQuickJSWASMModuleFromVariant({
    ...variant,
    importModuleLoader: () => Promise.resolve(emscriptenModule),
  });
}

// The QuickJS heap lives in one WebAssembly memory that only grows, through memory.grow(): refusing growth
// past the cap makes malloc fail, which QuickJS turns into its out-of-memory error. Growth for the host's own
// work (uncapped > 0: input, compilation, host function results) is not refused.
function capHeap(qjs) {
  const memory = qjs.getWasmMemory();
  const grow = memory.grow;
  memory.grow = function (pages) {
    // QuickJS polls its interrupt handler only every few thousand operations; a loop of large allocations
    // can run far past the deadline between polls, but it grows the heap, and after the deadline it may not.
    if (uncapped === 0 && Date.now() > deadline) {
      timedOut = true;
      throw new RangeError('the program is out of time');
    }
    if (uncapped === 0 && memory.buffer.byteLength + pages * WASM_PAGE_BYTES > heapCap) {
      if (!heapExceeded) {
        heapExceeded = true;
        stopForHeap = true;
        heapCap += EMERGENCY_HEAP_BYTES;
      }
      throw new RangeError('the QuickJS heap is at its limit');
    }
    return Reflect.apply(grow, memory, [pages]);
  };
  return memory;
}

function withoutHeapCap(action) {
  uncapped += 1;
  try {
    return action();
  } finally {
    uncapped -= 1;
  }
}

// Runs inside QuickJS (its source text is evaluated there, never called in Node), before any guest code:
// it captures the intrinsics it relies on, so later changes by the guest to globals and prototypes do not
// change how the report is made. The host functions arrive as arguments and stay in this closure; they are
// never guest globals.
function guestBootstrap(hostStdout, hostStderr, hostFiles, bootstrapFile) {
  'use strict';
  const G = globalThis;
  const apply = Reflect.apply;
  const defineProperty = Reflect.defineProperty;
  const getOwnPropertyDescriptor = Reflect.getOwnPropertyDescriptor;
  const getPrototypeOf = Reflect.getPrototypeOf;
  const ownKeys = Reflect.ownKeys;
  const freeze = Object.freeze;
  const isArray = Array.isArray;
  const isView = ArrayBuffer.isView;
  const stringify = JSON.stringify;
  const parse = JSON.parse;
  const StringOf = String;
  const ErrorOf = Error;
  const TypeErrorOf = TypeError;
  const SyntaxErrorOf = SyntaxError;
  const objectPrototype = Object.prototype;
  const errorPrototype = Error.prototype;
  const datePrototype = Date.prototype;
  const regExpPrototype = RegExp.prototype;
  const mapPrototype = Map.prototype;
  const setPrototype = Set.prototype;
  const dataViewPrototype = DataView.prototype;
  const isPrototypeOf = Object.prototype.isPrototypeOf;
  const functionToString = Function.prototype.toString;
  const symbolToString = Symbol.prototype.toString;
  const dateToISOString = Date.prototype.toISOString;
  const regExpToString = RegExp.prototype.toString;
  const mapForEach = Map.prototype.forEach;
  const setForEach = Set.prototype.forEach;
  const mapSize = getOwnPropertyDescriptor(Map.prototype, 'size').get;
  const setSize = getOwnPropertyDescriptor(Set.prototype, 'size').get;
  const charCodeAt = String.prototype.charCodeAt;
  const indexOf = String.prototype.indexOf;
  const slice = String.prototype.slice;
  const MAX_ITEMS = 100;
  const MAX_DEPTH = 2;

  function inherits(prototype, value) {
    return apply(isPrototypeOf, prototype, [value]);
  }

  function isError(value) {
    return typeof value === 'object' && value !== null && inherits(errorPrototype, value);
  }

  function headline(error) {
    return StringOf(error.name) + ': ' + StringOf(error.message);
  }

  function isIdentifier(text) {
    if (text.length === 0) return false;
    for (let i = 0; i < text.length; i += 1) {
      const c = apply(charCodeAt, text, [i]);
      const letter = (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 36 || c === 95;
      if (!letter && !(i > 0 && c >= 48 && c <= 57)) return false;
    }
    return true;
  }

  function keyText(key) {
    if (typeof key === 'symbol') return '[' + apply(symbolToString, key, []) + ']';
    return isIdentifier(key) ? key : stringify(key);
  }

  function functionText(fn) {
    let name = '';
    try {
      const descriptor = getOwnPropertyDescriptor(fn, 'name');
      if (descriptor !== undefined && typeof descriptor.value === 'string') name = descriptor.value;
    } catch {}
    return '[Function ' + (name === '' ? '(anonymous)' : name) + ']';
  }

  function propertyText(descriptor, depth, seen) {
    if (descriptor.get !== undefined || descriptor.set !== undefined) {
      if (descriptor.get !== undefined && descriptor.set !== undefined) return '[Getter/Setter]';
      return descriptor.get !== undefined ? '[Getter]' : '[Setter]';
    }
    return inspect(descriptor.value, depth + 1, seen);
  }

  function constructorName(value) {
    const prototype = getPrototypeOf(value);
    if (prototype === null) return '[Object: null prototype]';
    if (prototype === objectPrototype) return '';
    try {
      const descriptor = getOwnPropertyDescriptor(prototype, 'constructor');
      if (descriptor !== undefined && typeof descriptor.value === 'function') {
        const name = getOwnPropertyDescriptor(descriptor.value, 'name');
        if (name !== undefined && typeof name.value === 'string' && name.value !== '') return name.value;
      }
    } catch {}
    return '';
  }

  function listText(prefix, items, more, open, close) {
    if (items === '' && more === 0) return prefix + open + close;
    if (more > 0) items += (items === '' ? '' : ', ') + '... ' + more + ' more item' + (more === 1 ? '' : 's');
    return prefix + open + ' ' + items + ' ' + close;
  }

  function arrayText(prefix, value, length, depth, seen) {
    let items = '';
    const shown = length < MAX_ITEMS ? length : MAX_ITEMS;
    for (let i = 0; i < shown; i += 1) {
      const descriptor = getOwnPropertyDescriptor(value, StringOf(i));
      items += (i === 0 ? '' : ', ') + (descriptor === undefined ? '<empty>' : propertyText(descriptor, depth, seen));
    }
    return listText(prefix, items, length - shown, '[', ']');
  }

  function objectText(value, depth, seen) {
    const keys = ownKeys(value);
    let items = '';
    let count = 0;
    let more = 0;
    for (let i = 0; i < keys.length; i += 1) {
      const key = keys[i];
      const descriptor = getOwnPropertyDescriptor(value, key);
      if (descriptor === undefined || !descriptor.enumerable) continue;
      if (count === MAX_ITEMS) {
        more += 1;
        continue;
      }
      items += (count === 0 ? '' : ', ') + keyText(key) + ': ' + propertyText(descriptor, depth, seen);
      count += 1;
    }
    const name = constructorName(value);
    return listText(name === '' ? '' : name + ' ', items, more, '{', '}');
  }

  function collectionText(value, depth, seen) {
    let items = '';
    let count = 0;
    if (inherits(mapPrototype, value)) {
      let size;
      try {
        size = apply(mapSize, value, []);
      } catch {
        return undefined;
      }
      apply(mapForEach, value, [
        (entry, key) => {
          if (count < MAX_ITEMS) {
            items += (count === 0 ? '' : ', ') + inspect(key, depth + 1, seen) + ' => ' + inspect(entry, depth + 1, seen);
          }
          count += 1;
        },
      ]);
      return listText('Map(' + size + ') ', items, count - (count < MAX_ITEMS ? count : MAX_ITEMS), '{', '}');
    }
    if (inherits(setPrototype, value)) {
      let size;
      try {
        size = apply(setSize, value, []);
      } catch {
        return undefined;
      }
      apply(setForEach, value, [
        (entry) => {
          if (count < MAX_ITEMS) items += (count === 0 ? '' : ', ') + inspect(entry, depth + 1, seen);
          count += 1;
        },
      ]);
      return listText('Set(' + size + ') ', items, count - (count < MAX_ITEMS ? count : MAX_ITEMS), '{', '}');
    }
    return undefined;
  }

  // A small util.inspect: strings quoted (JSON) below the top level, depth 2, 100 items, cycles as
  // [Circular], getters shown but never called. Proxies and the guest's own objects may run guest code.
  function inspect(value, depth, seen) {
    const type = typeof value;
    if (type === 'string') return depth === 0 ? value : stringify(value);
    if (type === 'number') return value === 0 && 1 / value < 0 ? '-0' : StringOf(value);
    if (type === 'bigint') return StringOf(value) + 'n';
    if (type === 'boolean' || type === 'undefined') return StringOf(value);
    if (type === 'symbol') return apply(symbolToString, value, []);
    if (value === null) return 'null';
    if (type === 'function') return functionText(value);
    for (let entry = seen; entry !== null; entry = entry.next) {
      if (entry.value === value) return '[Circular]';
    }
    if (isError(value)) {
      if (depth === 0) return errorText(value);
      try {
        return '[' + headline(value) + ']';
      } catch {
        return '[Error]';
      }
    }
    const array = isArray(value);
    if (depth > MAX_DEPTH) return array ? '[Array]' : '[Object]';
    const inner = { value, next: seen };
    if (array) return arrayText('', value, value.length, depth, inner);
    if (isView(value) && !inherits(dataViewPrototype, value)) {
      return arrayText(constructorName(value) + '(' + value.length + ') ', value, value.length, depth, inner);
    }
    if (inherits(datePrototype, value)) {
      try {
        return apply(dateToISOString, value, []);
      } catch {
        return 'Invalid Date';
      }
    }
    if (inherits(regExpPrototype, value)) {
      try {
        return apply(regExpToString, value, []);
      } catch {}
    }
    const collection = collectionText(value, depth, inner);
    if (collection !== undefined) return collection;
    return objectText(value, depth, inner);
  }

  function frames(stack) {
    let text = '';
    let start = 0;
    while (start < stack.length) {
      let end = apply(indexOf, stack, ['\n', start]);
      if (end < 0) end = stack.length;
      const line = apply(slice, stack, [start, end]);
      if (line !== '' && apply(indexOf, line, [bootstrapFile]) < 0) text += (text === '' ? '' : '\n') + line;
      start = end + 1;
    }
    return text;
  }

  // How an error is printed: "Name: message" and the QuickJS frames of the guest's code.
  function errorText(error) {
    let text;
    try {
      text = headline(error);
    } catch {
      return 'Uncaught exception';
    }
    try {
      const stack = error.stack;
      if (typeof stack === 'string') {
        const lines = frames(stack);
        if (lines !== '') text += '\n' + lines;
      }
    } catch {}
    return text;
  }

  // The report's one-line message: "Name: message", or "Uncaught <value>" for a thrown non-Error.
  function describe(error) {
    try {
      if (isError(error)) return headline(error);
    } catch {
      return 'Uncaught exception';
    }
    try {
      return 'Uncaught ' + inspect(error, 1, null);
    } catch {
      return 'Uncaught exception';
    }
  }

  function format(args) {
    let text = '';
    for (let i = 0; i < args.length; i += 1) {
      const arg = args[i];
      text += (i === 0 ? '' : ' ') + (typeof arg === 'string' ? arg : inspect(arg, 0, null));
    }
    return text + '\n';
  }

  // Strings cross to the host as JSON text: the bridge converts through C strings, which end at NUL and
  // cannot carry lone surrogates.
  const guestConsole = {
    log(...args) {
      hostStdout(stringify(format(args)));
    },
    info(...args) {
      hostStdout(stringify(format(args)));
    },
    debug(...args) {
      hostStdout(stringify(format(args)));
    },
    error(...args) {
      hostStderr(stringify(format(args)));
    },
    warn(...args) {
      hostStderr(stringify(format(args)));
    },
  };

  // Each argument crosses as its own JSON string: QuickJS's JSON.stringify of an array goes through
  // Array.prototype setters, which the guest may have replaced; of a string it does not.
  function filesCall(operation, path, text) {
    const reply = parse(
      hostFiles(operation, path === undefined ? undefined : stringify(path), text === undefined ? undefined : stringify(text)),
    );
    if (reply[0] === 0) return reply[1];
    const name = reply[1];
    if (name === 'TypeError') throw new TypeErrorOf(reply[2]);
    const error = new ErrorOf(reply[2]);
    if (name !== 'Error') defineProperty(error, 'name', { value: name, writable: true, enumerable: true, configurable: true });
    throw error;
  }

  function checkPathType(path) {
    if (typeof path !== 'string') throw new TypeErrorOf('files: a path must be a string, not ' + typeof path);
  }

  const files = freeze({
    read(path) {
      checkPathType(path);
      return filesCall('read', path);
    },
    write(path, text) {
      if (typeof text !== 'string') {
        throw new TypeErrorOf('files.write: the content must be a string, not ' + typeof text);
      }
      checkPathType(path);
      filesCall('write', path, text);
    },
    list() {
      return filesCall('list');
    },
    exists(path) {
      checkPathType(path);
      return filesCall('exists', path);
    },
  });

  // Error.prepareStackTrace (a V8 extension quickjs-ng copies) would run guest code whenever any error is
  // made, the engine's own included, and hands it the functions on the stack, this bootstrap's among them.
  // Setting it is ignored.
  defineProperty(ErrorOf, 'prepareStackTrace', {
    get: function prepareStackTrace() {
      return undefined;
    },
    set: function prepareStackTrace(_ignored) {},
    enumerable: false,
    configurable: false,
  });
  defineProperty(G, 'files', { value: files, writable: false, enumerable: false, configurable: false });
  defineProperty(G, 'console', { value: guestConsole, writable: true, enumerable: false, configurable: true });
  G.input = null;
  G.result = undefined;

  let captured;
  return {
    setInput(text) {
      G.input = parse(text);
    },
    capture(value) {
      captured = value;
    },
    // The gate is the first statement of the program's script; see compile() in the host.
    armGate(name, expected) {
      defineProperty(G, name, {
        configurable: true,
        enumerable: false,
        writable: false,
        value: (program) => {
          if (typeof program !== 'function' || apply(functionToString, program, []) !== expected) {
            throw new SyntaxErrorOf("unexpected '}': the code closes the function it runs in");
          }
          return program;
        },
      });
    },
    disarmGate(name) {
      delete G[name];
    },
    // The report value: a returned value other than undefined wins over result.
    settle(returned) {
      const value = returned !== undefined ? returned : captured;
      const json = stringify(value === undefined ? null : value);
      if (json === undefined) throw new TypeErrorOf('a ' + typeof value + ' has no JSON form');
      return json;
    },
    // Prints the error to stderr and returns the report's message.
    explain(error) {
      try {
        hostStderr(stringify((isError(error) ? errorText(error) : describe(error)) + '\n'));
      } catch {}
      return describe(error);
    },
    describe(error) {
      return describe(error);
    },
  };
}

// Node's own checks, errors and messages for guest paths (as in JAVASCRIPT_WRAPPER): relative, no empty, '.'
// or '..' segment, no NUL, valid Unicode, at most 2048 bytes (255 a segment), never through a symlink.
function checkedSegments(path) {
  if (typeof path !== 'string') throw new TypeError('files: a path must be a string, not ' + typeof path);
  let problem = null;
  const segments = path.split('/');
  if (path === '') problem = 'is empty';
  else if (path.includes('\0')) problem = 'contains NUL';
  else if (path.startsWith('/')) problem = 'is absolute';
  else if (Buffer.from(path, 'utf8').toString('utf8') !== path) problem = 'is not valid Unicode';
  else if (Buffer.byteLength(path) > 2048) problem = 'is longer than 2048 bytes';
  else if (segments.some((segment) => segment === '')) problem = 'has an empty segment';
  else if (segments.some((segment) => segment === '.' || segment === '..')) {
    problem = "has a '.' or '..' segment";
  } else if (segments.some((segment) => Buffer.byteLength(segment) > 255)) {
    problem = 'has a segment longer than 255 bytes';
  }
  if (problem !== null) {
    const hint = ' (use a relative path like "data/in.csv")';
    throw new TypeError('files: the path ' + JSON.stringify(path) + ' ' + problem + hint);
  }
  return segments;
}

function filesError(operation, path, what) {
  const error = new Error('files.' + operation + ': ' + JSON.stringify(path) + ' ' + what);
  error.name = 'FilesError';
  return error;
}

// Every directory on the way must be a real directory, not a symlink; write() creates missing ones.
function resolveInWork(operation, path, create) {
  const segments = checkedSegments(path);
  let current = workDir;
  for (const segment of segments.slice(0, -1)) {
    current += '/' + segment;
    let info;
    try {
      info = fs.lstatSync(current);
    } catch (error) {
      if (error && error.code === 'ENOENT') {
        if (!create) throw filesError(operation, path, 'does not exist');
        fs.mkdirSync(current, 0o755);
        continue;
      }
      throw error;
    }
    if (!info.isDirectory()) throw filesError(operation, path, 'has a parent that is not a directory');
  }
  return workDir + '/' + segments.join('/');
}

function openInWork(operation, path, flags, create) {
  const full = resolveInWork(operation, path, create);
  let fd;
  try {
    fd = fs.openSync(full, flags | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK, 0o644);
  } catch (error) {
    if (error && error.code === 'ENOENT') throw filesError(operation, path, 'does not exist');
    if (error && error.code === 'ELOOP') throw filesError(operation, path, 'is a symbolic link');
    if (error && error.code === 'EISDIR') throw filesError(operation, path, 'is a directory');
    throw error;
  }
  if (!fs.fstatSync(fd).isFile()) {
    fs.closeSync(fd);
    throw filesError(operation, path, 'is not a regular file');
  }
  return fd;
}

function filesRead(path) {
  const fd = openInWork('read', path, fs.constants.O_RDONLY, false);
  try {
    return fs.readFileSync(fd, 'utf8');
  } finally {
    fs.closeSync(fd);
  }
}

function filesWrite(path, text) {
  if (typeof text !== 'string') {
    throw new TypeError('files.write: the content must be a string, not ' + typeof text);
  }
  const flags = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC;
  const fd = openInWork('write', path, flags, true);
  try {
    fs.writeFileSync(fd, text, 'utf8');
  } finally {
    fs.closeSync(fd);
  }
  return null;
}

function filesList() {
  const found = [];
  const pending = [''];
  while (pending.length > 0) {
    const prefix = pending.pop();
    let entries;
    try {
      entries = fs.readdirSync(prefix === '' ? workDir : workDir + '/' + prefix, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const entry of entries) {
      const relative = prefix === '' ? entry.name : prefix + '/' + entry.name;
      if (entry.isDirectory()) pending.push(relative);
      else if (entry.isFile()) found.push(relative);
    }
  }
  return found.sort();
}

function filesExists(path) {
  checkedSegments(path);
  try {
    return fs.lstatSync(resolveInWork('exists', path, false)).isFile();
  } catch {
    return false;
  }
}

// The host side of files.*: each argument is JSON text (or null when absent); the reply is JSON text of
// [0, value] or [1, name, message]. Everything is re-checked here whatever the bootstrap did, as if the
// guest had called this directly.
function filesOperation(operation, pathJson, textJson) {
  try {
    const path = typeof pathJson === 'string' ? JSON.parse(pathJson) : undefined;
    const text = typeof textJson === 'string' ? JSON.parse(textJson) : undefined;
    let value;
    switch (operation) {
      case 'read':
        value = filesRead(path);
        break;
      case 'write':
        value = filesWrite(path, text);
        break;
      case 'list':
        value = filesList();
        break;
      case 'exists':
        value = filesExists(path);
        break;
      default:
        throw new TypeError('files: unknown operation');
    }
    return JSON.stringify([0, value]);
  } catch (error) {
    const name = error instanceof Error ? String(error.name) : 'Error';
    const message = error instanceof Error ? String(error.message) : String(error);
    return JSON.stringify([1, name, message]);
  }
}

// One QuickJS runtime and context with the bootstrap installed. A host function takes only string
// arguments (anything else is read as null) and never throws into the engine.
function prepareGuest(qjs, muted) {
  const runtime = qjs.newRuntime();
  runtime.setMaxStackSize(MAX_STACK_BYTES);
  runtime.setInterruptHandler(() => {
    if (stopForHeap) return true;
    if (Date.now() > deadline) {
      timedOut = true;
      return true;
    }
    return false;
  });
  const context = runtime.newContext();

  function hostFunction(name, implementation) {
    return context.newFunction(name, (...handles) => {
      uncapped += 1;
      try {
        const texts = handles.map((handle) => (context.typeof(handle) === 'string' ? context.getString(handle) : null));
        const reply = implementation(texts);
        return typeof reply === 'string' ? context.newString(reply) : undefined;
      } catch (error) {
        const what = error instanceof Error ? error.name + ': ' + error.message : String(error);
        return context.newString(JSON.stringify([1, 'InternalError', 'the sandbox host failed: ' + what]));
      } finally {
        uncapped -= 1;
      }
    });
  }

  function writer(fd) {
    return ([json]) => {
      if (muted || typeof json !== 'string') return undefined;
      let text;
      try {
        text = JSON.parse(json);
      } catch {
        return undefined;
      }
      if (typeof text === 'string') output(fd, text);
      return undefined;
    };
  }

  const hostStdout = hostFunction('stdout', writer(1));
  const hostStderr = hostFunction('stderr', writer(2));
  const hostFiles = hostFunction('files', ([operation, pathJson, textJson]) =>
    filesOperation(operation, pathJson, textJson),
  );
  const install = context.unwrapResult(
    context.evalCode('(' + guestBootstrap.toString() + ')', BOOTSTRAP_FILE, { type: 'global', strict: true }),
  );
  const bootstrapFile = context.newString(BOOTSTRAP_FILE);
  const internalsHandle = context.unwrapResult(
    context.callFunction(install, context.undefined, hostStdout, hostStderr, hostFiles, bootstrapFile),
  );
  install.dispose();
  bootstrapFile.dispose();
  hostStdout.dispose();
  hostStderr.dispose();
  hostFiles.dispose();
  const internals = {};
  for (const name of ['setInput', 'capture', 'armGate', 'disarmGate', 'settle', 'explain', 'describe']) {
    internals[name] = context.getProp(internalsHandle, name);
  }
  internalsHandle.dispose();
  return { runtime, context, internals };
}

function call(guest, name, args) {
  return guest.context.callFunction(guest.internals[name], guest.context.undefined, args);
}

function callWithStrings(guest, name, strings) {
  const handles = withoutHeapCap(() => strings.map((text) => guest.context.newString(text)));
  try {
    return call(guest, name, handles);
  } finally {
    for (const handle of handles) handle.dispose();
  }
}

// The program is declared, never spliced into an expression: the script is
//   {<gate>(__tandem_main); async function __tandem_main(__tandemCapture__) {<code>\n;<capture>\n}}
// The declaration is instantiated when the block is entered, so the gate (the first statement) sees it
// before any statement of the code could run. If the code closed the function early, the declared function
// is shorter than the whole text and the gate throws, so nothing after it runs. The gate's name is random:
// code that closes the block cannot redeclare it (a hoisted global function of the same name would replace
// it). The head shares the code's first line, so line numbers in traces are the code's own.
function compile(guest, source) {
  const { context } = guest;
  const gate = '__tandem_gate_' + Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
  const declaration =
    'async function __tandem_main(__tandemCapture__) {' +
    source +
    '\n;__tandemCapture__(typeof result === "undefined" ? undefined : result);\n}';
  const armed = callWithStrings(guest, 'armGate', [gate, declaration]);
  if (armed.error) return armed;
  armed.value.dispose();
  const script = '{' + gate + '(__tandem_main); ' + declaration + '}';
  const compiled = withoutHeapCap(() => context.evalCode(script, 'code.js', { type: 'global' }));
  const disarmed = callWithStrings(guest, 'disarmGate', [gate]);
  if (disarmed.error) {
    if (!compiled.error) compiled.value.dispose();
    return disarmed;
  }
  disarmed.value.dispose();
  return compiled;
}

// Runs pending jobs until the promise settles, the deadline passes or nothing is left to run.
function drive(guest, promise) {
  const { runtime, context } = guest;
  for (;;) {
    const state = context.getPromiseState(promise);
    if (state.type !== 'pending') return state;
    if (Date.now() > deadline) reportTimeout();
    if (!runtime.hasPendingJob()) return { type: 'stuck' };
    const ran = runtime.executePendingJobs(JOB_BATCH);
    if (ran.error) return { type: 'rejected', error: ran.error };
  }
}

// Jobs the program left queued still run before the report (as in Node, where microtasks drain before the
// wrapper exits), within the deadline.
function drain(guest) {
  const { runtime } = guest;
  while (runtime.hasPendingJob()) {
    if (Date.now() > deadline || heapExceeded) return;
    const ran = runtime.executePendingJobs(JOB_BATCH);
    if (ran.error) ran.error.dispose();
  }
}

// After the guest failed: what it threw becomes the report (printed to stderr first). Once the heap hit its
// cap the engine is not asked anything more: its allocator may have nothing left for the bridge.
function failed(guest, errorHandle) {
  if (timedOut || Date.now() > deadline) reportTimeout();
  if (heapExceeded) reportMemory();
  stopForHeap = false;
  heapCap = Infinity;
  if (memoryBytes > 0) guest.runtime.setMemoryLimit(-1);
  let message = 'Uncaught exception';
  const explained = call(guest, 'explain', [errorHandle]);
  if (explained.error) {
    explained.error.dispose();
  } else {
    message = guest.context.getString(explained.value);
    explained.value.dispose();
  }
  if (timedOut) reportTimeout();
  if (message === OUT_OF_MEMORY) reportError('memory', memoryMessage());
  drain(guest);
  if (timedOut || Date.now() > deadline) reportTimeout();
  reportError('exception', message);
}

function succeeded(guest, valueHandle) {
  const settled = call(guest, 'settle', [valueHandle]);
  valueHandle.dispose();
  if (settled.error) {
    if (timedOut || Date.now() > deadline) reportTimeout();
    if (heapExceeded) reportMemory();
    const described = call(guest, 'describe', [settled.error]);
    let reason = 'Uncaught exception';
    if (!described.error) {
      reason = guest.context.getString(described.value);
      described.value.dispose();
    }
    if (timedOut) reportTimeout();
    if (reason === OUT_OF_MEMORY) reportError('memory', memoryMessage());
    const message = 'result is not JSON-serialisable: ' + reason;
    output(2, message + '\n');
    reportError('result', message);
  }
  const json = guest.context.getString(settled.value);
  settled.value.dispose();
  drain(guest);
  if (timedOut || Date.now() > deadline) reportTimeout();
  if (heapExceeded) reportMemory();
  finish('{"status":"ok","value":' + json + '}', 0);
}

function runJob(guest, memory, go) {
  const { runtime, context } = guest;
  const source = fs.readFileSync(boxDir + '/code.js', 'utf8');
  const inputText = fs.readFileSync(boxDir + '/input.json', 'utf8');

  // Like the Python wrapper's RLIMIT_AS, the memory limit applies once the input is loaded and the code
  // compiled, so only what the code does counts against it.
  const loaded = callWithStrings(guest, 'setInput', [inputText]);
  if (loaded.error) return failed(guest, loaded.error);
  loaded.value.dispose();
  const compiled = compile(guest, source);
  if (compiled.error) return failed(guest, compiled.error);
  const program = compiled.value;

  memoryBytes = go.memoryBytes;
  if (memoryBytes > 0) {
    runtime.setMemoryLimit(memoryBytes);
    const capBytes = Math.ceil(memoryBytes / WASM_PAGE_BYTES) * WASM_PAGE_BYTES;
    heapCap = Math.max(memory.buffer.byteLength, capBytes);
  }
  const called = context.callFunction(program, context.undefined, guest.internals.capture);
  if (called.error) return failed(guest, called.error);
  const state = drive(guest, called.value);
  if (state.type === 'fulfilled') return succeeded(guest, state.value);
  if (state.type === 'rejected') return failed(guest, state.error);
  const message =
    'Error: the program awaited something that can never settle (there are no timers or I/O here)';
  output(2, message + '\n');
  reportError('exception', message);
}

// A job like a real one, so the first real job does not pay for lazily compiled WebAssembly and JavaScript.
function warmUp(qjs) {
  const guest = prepareGuest(qjs, true);
  const loaded = callWithStrings(guest, 'setInput', ['{"warm":[1,"x",null]}']);
  if (!loaded.error) loaded.value.dispose();
  const compiled = compile(
    guest,
    'const text = JSON.stringify(input); console.log("warm", { text, list: [1, 2] }, [input]);\n' +
      'await Promise.resolve(1); result = JSON.parse(text); return result;',
  );
  if (compiled.error) throw new Error('the QuickJS warm-up program did not compile');
  const called = guest.context.callFunction(compiled.value, guest.context.undefined, guest.internals.capture);
  compiled.value.dispose();
  if (called.error) throw new Error('the QuickJS warm-up program failed');
  const state = drive(guest, called.value);
  called.value.dispose();
  if (state.type !== 'fulfilled') throw new Error('the QuickJS warm-up program did not finish');
  const settled = call(guest, 'settle', [state.value]);
  state.value.dispose();
  if (settled.error) throw new Error('the QuickJS warm-up result did not serialise');
  settled.value.dispose();
  for (const name of Object.keys(guest.internals)) guest.internals[name].dispose();
  guest.context.dispose();
  guest.runtime.dispose();
}

// Blocks until the go line. A descriptor left non-blocking answers EAGAIN: then it is polled.
function readGoLine() {
  const chunk = Buffer.alloc(64);
  let line = '';
  let delay = 1;
  for (;;) {
    let count;
    try {
      count = fs.readSync(GO_FD, chunk, 0, chunk.length, null);
    } catch (error) {
      if (error && error.code === 'EAGAIN') {
        pause(delay);
        delay = Math.min(delay * 2, 5);
        continue;
      }
      if (error && error.code === 'EINTR') continue;
      throw error;
    }
    if (count === 0) return null;
    line += chunk.toString('latin1', 0, count);
    const end = line.indexOf('\n');
    if (end >= 0) return line.slice(0, end);
    if (line.length > 64) return line;
  }
}

function parseGo(line) {
  const match = /^(\d{1,15}) (\d{1,15})$/.exec(line);
  if (match === null) return null;
  return { memoryBytes: Number(match[1]), timeoutMs: Number(match[2]) };
}

async function main() {
  closeInheritedDescriptors();
  const qjs = await loadEngine();
  const memory = capHeap(qjs);
  warmUp(qjs);
  const guest = prepareGuest(qjs, false);
  send(READY_MARKER);

  const line = readGoLine();
  if (line === null) process.exit(0);
  const go = parseGo(line);
  if (go === null) {
    reportError('exception', 'InternalError: malformed go line ' + JSON.stringify(line.slice(0, 80)));
  }
  timeLimitMs = go.timeoutMs;
  deadline = Date.now() + go.timeoutMs;
  runJob(guest, memory, go);
}

main().catch(hostFailure);
`;

/**
 * Node/V8 flags for the host process, measured on a 2-CPU machine where `node -e 1` costs ~40 ms CPU:
 * - `--liftoff-only`: without it V8 tiers the ~500 KB QuickJS module up with TurboFan in background threads,
 *   which cost more than everything else together (a trivial job: ~350 ms CPU and ~100 ms from go to exit,
 *   against ~105 ms and ~7 ms) and made long interpreter loops slower, not faster (3e6 iterations: ~1.0 s
 *   against ~0.55 s).
 * - `--stack-size=4000` (KiB): not for CPU. It raises V8's stack limit so QuickJS's own stack check
 *   (`MAX_STACK_BYTES` in the program, 768 KiB) fires first for guest recursion; it must stay well below the
 *   8 MiB main-thread stack rlimit the box inherits.
 * Measured and left out (no difference beyond noise): `--wasm-lazy-compilation`, `--single-threaded`,
 * `--v8-pool-size=1`, `--max-semi-space-size=1`, `--max-lazy`, `--no-opt`. `--jitless` would remove
 * WebAssembly altogether.
 */
export const QUICKJS_NODE_FLAGS: readonly string[] = ['--liftoff-only', '--stack-size=4000'];

/** Where the QuickJS packages appear inside the box (bound read-only). */
const QUICKJS_BOX_ROOT = '/qjs';

const QUICKJS_PACKAGES = [
  'quickjs-emscripten-core',
  '@jitl/quickjs-ffi-types',
  '@jitl/quickjs-ng-wasmfile-release-sync',
] as const;

/** The directory of the package named `name` that holds `entry`: the nearest ancestor whose package.json names it. */
async function packageRoot(entry: string, name: string): Promise<string> {
  let directory = path.dirname(await realpath(entry));
  for (;;) {
    try {
      const manifest: unknown = JSON.parse(await readFile(path.join(directory, 'package.json'), 'utf8'));
      if (typeof manifest === 'object' && manifest !== null && 'name' in manifest && manifest.name === name) {
        return directory;
      }
    } catch {
      // No (readable) package.json here: keep walking up.
    }
    const parent = path.dirname(directory);
    if (parent === directory) throw new Error(`cannot find the package directory of ${name} above ${entry}`);
    directory = parent;
  }
}

/**
 * The real host directories of the three QuickJS packages and where each goes under `/qjs/node_modules`.
 * Bound read-only at those paths, Node's resolution from `/qjs/node_modules/quickjs-emscripten-core/dist`
 * finds `/qjs/node_modules/@jitl/quickjs-ffi-types`. `quickjs-emscripten-core` exports no `./package.json`,
 * so each package is found from its main entry; `@jitl/quickjs-ffi-types` is resolved from the core, which
 * is the package that requires it at run time.
 */
export async function quickjsPackageDirs(): Promise<Array<{ hostPath: string; boxPath: string }>> {
  const require = createRequire(import.meta.url);
  const [core, ffiTypes, variant] = QUICKJS_PACKAGES;
  const coreDir = await packageRoot(require.resolve(core), core);
  const variantDir = await packageRoot(require.resolve(variant), variant);
  const fromCore = createRequire(path.join(coreDir, 'package.json'));
  const ffiTypesDir = await packageRoot(fromCore.resolve(ffiTypes), ffiTypes);
  const hostPaths: Record<(typeof QUICKJS_PACKAGES)[number], string> = {
    [core]: coreDir,
    [ffiTypes]: ffiTypesDir,
    [variant]: variantDir,
  };
  return QUICKJS_PACKAGES.map((name) => ({
    hostPath: hostPaths[name],
    boxPath: `${QUICKJS_BOX_ROOT}/node_modules/${name}`,
  }));
}
