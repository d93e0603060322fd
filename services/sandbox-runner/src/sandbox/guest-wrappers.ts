/**
 * The programs that run inside the box around the user's code. They never splice the user's code into
 * their own source: Python `exec`s a compiled code object; JavaScript first checks that the code parses as
 * a function body on its own, so nothing in it can close the function around it.
 *
 * Protocol with the supervisor, over file descriptor 3 (the "result channel", a pipe the supervisor reads
 * with a size cap while the job runs, so a result never touches the host's disk):
 *   1. `READY_MARKER`, written before any user code runs. Without it, the interpreter never started.
 *   2. At most one JSON report: `{"status":"ok","value":...}` or
 *      `{"status":"error","kind":"exception"|"result"|"memory","message":"..."}`.
 * The user's code can write to fd 3 as well; that only spoils its own report, which is parsed as untrusted.
 */

/** First bytes on the result channel; proves the wrapper (not bwrap or a broken interpreter) is running. */
export const READY_MARKER = '\u0000tandem:ready\n';

/** Where the wrapper, code and input appear inside the box (bound read-only). */
export const BOX_DIR = '/box';

/** The guest's working directory (and cwd): the job's files, and everything collected afterwards. */
export const WORK_DIR = '/work';

/** File names inside `BOX_DIR`. */
export const BOX_FILES = {
  pythonWrapper: 'run.py',
  javascriptWrapper: 'run.cjs',
  pythonCode: 'code.py',
  javascriptCode: 'code.js',
  input: 'input.json',
} as const;

// Both wrappers first close any descriptor above 3 that lacks close-on-exec: such a descriptor was
// inherited by the runner from whatever started it (seen here: a pipe from the process supervisor), and
// Node passes it on to every child. Descriptors the interpreter opened itself are close-on-exec.

/**
 * Python wrapper, run as `python3 -I -S run.py <boxDir> <maxProcesses> <maxFileBytes> <cpuSeconds>`. It starts, closes stray descriptors, prepares everything a job needs, writes the ready
 * marker, and then blocks on the go channel (fd 4) for one line: `<memoryBytes> <timeoutMs>`. Only then does
 * it read the code and input (written by the runner after the box was ready) and run them. `memoryBytes` is
 * the RLIMIT_AS applied just before the user's code (0: none); the timeout is the supervisor's business.
 *
 * JSON goes through the C accelerator `_json` directly: `import json` pulls in `re`, `enum` and `functools`
 * and cost about 9 ms of CPU per job here, more than a third of a trivial job. Both produce the same text
 * (`json.dumps` with `ensure_ascii` and `allow_nan=False` uses the same C encoder).
 */
export const PYTHON_WRAPPER = String.raw`import os
import sys


def _tandem_main():
    result_fd = 3
    go_fd = 4
    # Where the runner writes code.py and input.json: /box in a bwrap box, the host path without one.
    box_dir = sys.argv[1] if len(sys.argv) > 1 else '/box'
    wrapper_pid = os.getpid()

    def send(data):
        view = memoryview(data)
        while view:
            written = os.write(result_fd, view)
            view = view[written:]

    for name in os.listdir('/proc/self/fd'):
        fd = int(name)
        if fd <= go_fd:
            continue
        try:
            with open('/proc/self/fdinfo/' + name) as info:
                flags = next(line for line in info if line.startswith('flags:'))
        except (OSError, StopIteration):
            continue
        if not int(flags.split()[1], 8) & 0o2000000:
            try:
                os.close(fd)
            except OSError:
                pass

    import builtins
    import resource
    import _json

    # Backstops set here, before any guest code, instead of by a prlimit process in front of Python (one
    # exec less per job): processes (counted in this box's user namespace), file size, CPU seconds; no
    # core files. Hard limits too, so the guest cannot raise them again. A negative value leaves one unset.
    if len(sys.argv) > 4:
        for limit, value in (
            (resource.RLIMIT_NPROC, int(sys.argv[2])),
            (resource.RLIMIT_FSIZE, int(sys.argv[3])),
            (resource.RLIMIT_CPU, int(sys.argv[4])),
            (resource.RLIMIT_CORE, 0),
        ):
            if value >= 0:
                resource.setrlimit(limit, (value, value))

    class _Decoding:
        strict = True
        object_hook = None
        object_pairs_hook = None
        parse_float = float
        parse_int = int
        parse_constant = None
        memo = {}

    scan_json = _json.make_scanner(_Decoding())

    def not_json(value):
        raise TypeError('Object of type ' + type(value).__name__ + ' is not JSON serializable')

    def encode_json(value):
        encoder = _json.make_encoder({}, not_json, _json.encode_basestring_ascii, None, ':', ',', False, False, False)
        return ''.join(encoder(value, 0))

    def report(status, **fields):
        fields['status'] = status
        return encode_json(fields)

    sys.stdout.reconfigure(line_buffering=True, errors='backslashreplace')
    sys.stderr.reconfigure(errors='backslashreplace')
    # -S skips site, which is what normally defines exit() and quit(); model-written code uses them.
    builtins.exit = sys.exit
    builtins.quit = sys.exit

    # Imported while the box waits for its job (off the job's clock), and before any memory limit, so a
    # MemoryError can still be reported with its traceback.
    import linecache  # noqa: F401
    import traceback  # noqa: F401

    send(b'\x00tandem:ready\n')

    line = b''
    while not line.endswith(b'\n'):
        chunk = os.read(go_fd, 64)
        if not chunk:
            # The runner discarded this box unused.
            os._exit(0)
        line += chunk
        if len(line) > 64:
            break
    os.close(go_fd)
    try:
        memory_text, _timeout_text = line.decode('ascii').split()
        memory_bytes = int(memory_text)
    except ValueError:
        send(report('error', kind='exception', message='the go line was malformed').encode('ascii'))
        os._exit(1)

    with open(box_dir + '/input.json', 'rb') as file:
        input_text = file.read().decode('utf-8')
    input_value = scan_json(input_text, 0)[0]
    with open(box_dir + '/code.py', 'rb') as file:
        source = file.read().decode('utf-8', 'replace')

    # traceback (and linecache) cost a few milliseconds to import: only failures pay for them.
    def print_exception(error, frames=True):
        import linecache
        import traceback

        linecache.cache['<code>'] = (len(source), None, source.splitlines(True), '<code>')
        if frames:
            # A MemoryError raised while the interpreter had no memory left may carry no traceback.
            frames_of_code = error.__traceback__.tb_next if error.__traceback__ is not None else None
            traceback.print_exception(type(error), error, frames_of_code)
        else:
            sys.stderr.write(''.join(traceback.format_exception_only(type(error), error)))
        return ''.join(traceback.format_exception_only(type(error), error)).strip().splitlines()[-1]

    def fail(kind, message):
        try:
            if os.getpid() == wrapper_pid:
                send(report('error', kind=kind, message=message[:2000]).encode('ascii'))
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(1)

    try:
        code = compile(source, '<code>', 'exec')
    except (SyntaxError, ValueError) as error:
        fail('exception', print_exception(error, frames=False))

    if memory_bytes > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))

    user_globals = {'__name__': '__main__', '__builtins__': builtins, 'input': input_value}
    try:
        exec(code, user_globals)
    except SystemExit as request:
        if os.getpid() != wrapper_pid:
            raise
        if request.code not in (None, 0):
            raise
    except MemoryError as error:
        user_globals.clear()  # frees what the program held, so the report itself has room
        try:
            print_exception(error)
        except Exception:
            # Reporting must not fail the report: with memory this short even printing may raise.
            pass
        fail('memory', 'MemoryError: the program exceeded its memory limit')
    except BaseException as error:
        fail('exception', print_exception(error))

    if os.getpid() != wrapper_pid:
        # A child forked by the user's code ran off the end of it: only the original process reports.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    try:
        text = report('ok', value=user_globals.get('result'))
    except MemoryError:
        fail('memory', 'MemoryError: the result did not fit in the memory limit')
    except (TypeError, ValueError, RecursionError) as error:
        message = 'result is not JSON-serialisable: ' + type(error).__name__ + ': ' + str(error)
        sys.stderr.write(message + '\n')
        fail('result', message)
    send(text.encode('ascii'))
    sys.stdout.flush()

    # Interpreter shutdown tears every module down and cost about a third of a trivial job here. Skip it when
    # nothing can depend on it: no other thread running and no atexit callback (logging registers one). The
    # program's objects are released first, so files it left open are flushed and closed by their finalizers.
    import atexit
    import gc

    user_globals.clear()
    gc.collect()
    threading = sys.modules.get('threading')
    others = threading.active_count() - 1 if threading is not None else 0
    callbacks = getattr(atexit, '_ncallbacks', lambda: 1)()
    if others == 0 and callbacks == 0:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


_tandem_main()
`;

/**
 * JavaScript wrapper (CommonJS). The user's code is the body of an async function: `return value`, top-level
 * `await`, assigning the pre-declared global `result`, and declaring its own `let result` all work; `input`
 * and `require` (built-in modules) are globals. A returned value other than `undefined` wins over `result`.
 * After the result is sent the process exits once stdout and stderr are flushed, even if the code left timers
 * running.
 *
 * The global `files` is the working directory for code that must also run where there is no `fs` (the
 * QuickJS backend to come): `read(path)` (UTF-8 text), `write(path, text)` (creates parent directories),
 * `list()` (every regular file, sorted), `exists(path)` (a regular file is there). Paths follow the job-file
 * rules (relative, no empty, `.` or `..` segment, no NUL, at most 2048 bytes) and never go through a symlink.
 */
export const JAVASCRIPT_WRAPPER = String.raw`'use strict';
const fs = require('node:fs');
const vm = require('node:vm');
const util = require('node:util');

const RESULT_FD = 3;
const GO_FD = 4;

function send(text) {
  const bytes = Buffer.from(text, 'utf8');
  let offset = 0;
  while (offset < bytes.length) {
    try {
      offset += fs.writeSync(RESULT_FD, bytes, offset, bytes.length - offset);
    } catch (error) {
      if (error && error.code === 'EAGAIN') continue;
      throw error;
    }
  }
}

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

send('\u0000tandem:ready\n');

// Wait for the runner's go line on fd 4 (a blocking socket): the job's code and input exist only now.
{
  const chunk = Buffer.alloc(64);
  let line = '';
  while (!line.includes('\n')) {
    let read;
    try {
      read = fs.readSync(GO_FD, chunk, 0, chunk.length, null);
    } catch (error) {
      if (error && error.code === 'EAGAIN') continue;
      throw error;
    }
    if (read === 0) process.exit(0);
    line += chunk.toString('latin1', 0, read);
    if (line.length > 64) break;
  }
  fs.closeSync(GO_FD);
}

function exitAfterFlush(code) {
  process.exitCode = code;
  let pending = 2;
  const done = () => {
    pending -= 1;
    if (pending === 0) process.exit(code);
  };
  process.stdout.write('', done);
  process.stderr.write('', done);
}

const BOX_DIR = process.argv[2] || '/box';
const WORK_DIR = process.argv[3] || '/work';

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
  let current = WORK_DIR;
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
  return WORK_DIR + '/' + segments.join('/');
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

const files = Object.freeze({
  read(path) {
    const fd = openInWork('read', path, fs.constants.O_RDONLY, false);
    try {
      return fs.readFileSync(fd, 'utf8');
    } finally {
      fs.closeSync(fd);
    }
  },
  write(path, text) {
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
  },
  list() {
    const found = [];
    const pending = [''];
    while (pending.length > 0) {
      const prefix = pending.pop();
      let entries;
      try {
        entries = fs.readdirSync(prefix === '' ? WORK_DIR : WORK_DIR + '/' + prefix, { withFileTypes: true });
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
  },
  exists(path) {
    checkedSegments(path);
    try {
      return fs.lstatSync(resolveInWork('exists', path, false)).isFile();
    } catch {
      return false;
    }
  },
});
Object.defineProperty(globalThis, 'files', {
  value: files,
  writable: false,
  enumerable: false,
  configurable: false,
});

function describe(error) {
  if (error instanceof Error) return String(error.name) + ': ' + String(error.message);
  return 'Uncaught ' + util.inspect(error, { depth: 2 });
}

function printError(error) {
  let text;
  if (error instanceof Error && typeof error.stack === 'string') {
    text = error.stack
      .split('\n')
      .filter((line) => !/\/box\/run\.cjs|node:internal|\(node:\w+|at node:\w+|at new AsyncFunction/.test(line))
      .join('\n');
  } else {
    text = describe(error);
  }
  process.stderr.write(text + '\n');
}

function fail(kind, message) {
  send(JSON.stringify({ status: 'error', kind, message: message.slice(0, 2000) }));
  exitAfterFlush(1);
}

async function main() {
  globalThis.input = JSON.parse(fs.readFileSync(BOX_DIR + '/input.json', 'utf8'));
  globalThis.result = undefined;
  // Like Python's import: the box, not the language, is the boundary, so built-in modules are available.
  globalThis.require = require('node:module').createRequire(WORK_DIR + '/');
  const source = fs.readFileSync(BOX_DIR + '/code.js', 'utf8');
  const AsyncFunction = (async function () {}).constructor;
  const head = '(async function (__tandemCapture__) {\n';
  const tail = '\n;__tandemCapture__(typeof result === "undefined" ? undefined : result);\n})';

  let program;
  try {
    // The body must parse on its own (this is what the Function constructor checks), so it cannot close
    // the function we put around it below.
    new AsyncFunction('__tandemCapture__', source);
  } catch (error) {
    let located = error;
    try {
      // Compile only (never run) the wrapped text to get the file:line and caret that vm adds.
      new vm.Script(head + source + '\n})', { filename: 'code.js', lineOffset: -1 });
    } catch (withLocation) {
      if (withLocation instanceof SyntaxError) located = withLocation;
    }
    printError(located);
    fail('exception', describe(error));
    return;
  }
  program = new vm.Script(head + source + tail, { filename: 'code.js', lineOffset: -1 }).runInThisContext();

  let captured;
  let returned;
  try {
    returned = await program((value) => {
      captured = value;
    });
  } catch (error) {
    printError(error);
    fail('exception', describe(error));
    return;
  }
  const value = returned !== undefined ? returned : captured;
  let report;
  try {
    const json = JSON.stringify(value === undefined ? null : value);
    if (json === undefined) throw new TypeError('a ' + typeof value + ' has no JSON form');
    report = '{"status":"ok","value":' + json + '}';
  } catch (error) {
    const message = 'result is not JSON-serialisable: ' + describe(error);
    process.stderr.write(message + '\n');
    fail('result', message);
    return;
  }
  send(report);
  exitAfterFlush(0);
}

main().catch((error) => {
  printError(error);
  fail('exception', describe(error));
});
`;
