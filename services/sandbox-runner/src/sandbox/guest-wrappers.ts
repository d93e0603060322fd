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
  /** The QuickJS host (`quickjs-host.ts`). */
  javascriptHost: 'host.cjs',
  /** The second seccomp filter (`execDenyFilter`) the Python wrapper installs on itself. */
  execFilter: 'exec-filter.bpf',
  pythonCode: 'code.py',
  javascriptCode: 'code.js',
  input: 'input.json',
} as const;

// Both wrappers first close any descriptor above 3 that lacks close-on-exec: such a descriptor was
// inherited by the runner from whatever started it (seen here: a pipe from the process supervisor), and
// Node passes it on to every child. Descriptors the interpreter opened itself are close-on-exec.

/**
 * Python wrapper, run as `python3 -I -S run.py <boxDir> <maxProcesses> <maxFileBytes> <cpuSeconds> <execFilter>`.
 * It starts, closes stray descriptors, sets its rlimits, installs the exec filter (`execFilter`: a file of
 * classic-BPF seccomp instructions, or `-` for none) so that nothing it runs can start a program, prepares
 * everything a job needs, writes the ready
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

    # Issue 11, hole 8: no program may be started from the box, not even this interpreter again. The filter
    # answers execve and execveat with EPERM (fork keeps working); installed on this process before any guest
    # code, it binds everything the guest does and cannot be removed. Through the C module _ctypes directly:
    # importing ctypes cost about 3.5 ms of CPU per job here, this about 0.8 ms. Fails closed: a wrapper
    # that cannot install it never reports ready.
    if len(sys.argv) > 5 and sys.argv[5] != '-':
        import _ctypes

        with open(sys.argv[5], 'rb') as file:
            instructions = file.read()

        class _Int(_ctypes._SimpleCData):
            _type_ = 'i'

        class _Long(_ctypes._SimpleCData):
            _type_ = 'l'

        class _UShort(_ctypes._SimpleCData):
            _type_ = 'H'

        class _Address(_ctypes._SimpleCData):
            _type_ = 'P'

        class _Char(_ctypes._SimpleCData):
            _type_ = 'c'

        class _Instructions(_ctypes.Array):
            _type_ = _Char
            _length_ = len(instructions)

        class _Program(_ctypes.Structure):
            _fields_ = [('len', _UShort), ('filter', _Address)]

        class _Prctl(_ctypes.CFuncPtr):
            _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
            _restype_ = _Int
            _argtypes_ = (_Int, _Long, _Long, _Long, _Long)

        prctl = _Prctl(_ctypes.dlsym(_ctypes.dlopen(None, os.RTLD_NOW), 'prctl'))
        code = _Instructions.from_buffer_copy(instructions)
        program = _Program(len(instructions) // 8, _ctypes.addressof(code))
        # PR_SET_NO_NEW_PRIVS (bwrap set it already; the process backend did not), then PR_SET_SECCOMP with
        # SECCOMP_MODE_FILTER.
        if prctl(38, 1, 0, 0, 0) != 0 or prctl(22, 2, _ctypes.addressof(program), 0, 0) != 0:
            error = _ctypes.get_errno()
            raise OSError(error, 'could not install the exec filter: ' + os.strerror(error))
        del code, program, prctl

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

    # The soft limit binds the program; the hard one leaves the headroom to report a MemoryError (traceback
    # and linecache are imported only on failure: at start they cost about 17 ms of CPU per job here). A
    # program may raise its own soft limit into that headroom; the memory cgroup bounds the box regardless.
    report_headroom = 64 * 1024 * 1024
    if memory_bytes > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes + report_headroom))

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
            if memory_bytes > 0:
                resource.setrlimit(resource.RLIMIT_AS, (memory_bytes + report_headroom,) * 2)
        except (ValueError, OSError):
            pass
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
