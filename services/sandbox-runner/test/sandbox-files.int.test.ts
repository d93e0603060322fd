import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { chmod, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';

import {
  type SandboxBackend,
  type SandboxFile,
  type SandboxJob,
  type SandboxLanguage,
  type SandboxLimits,
  type SandboxResult,
} from '../src/sandbox/index.js';
import { backendTracker } from './helpers/backends.js';
import { hostGate } from './helpers/host.js';

const { trackedBackend, drainBackends, closeBackends } = backendTracker();

// Real bubblewrap and, as root, a real per-job tmpfs: the working directory in and out of the box. Without
// bubblewrap (or, for the tmpfs, root) the tests are skipped, saying why; with CI=true they fail instead.
const IS_ROOT = process.getuid?.() === 0;
const gate = await hostGate(['bubblewrap']);
const withRoot = await hostGate(['bubblewrap', 'root']);
const LIMITS: SandboxLimits = { timeoutMs: 30_000, maxOutputBytes: 64 * 1024 };

let scratchRoot: string;
/** The default backend: a tmpfs working directory when root, a plain directory otherwise. */
let backend: SandboxBackend;
/** A plain host directory as the working directory (RLIMIT_FSIZE only), as a non-root runner has. */
let directoryBackend: SandboxBackend;

function file(filePath: string, content: string | Buffer): SandboxFile {
  return { path: filePath, content: typeof content === 'string' ? Buffer.from(content) : content };
}

function job(
  language: SandboxLanguage,
  code: string,
  extra: { files?: SandboxFile[]; limits?: Partial<SandboxLimits>; input?: unknown } = {},
): SandboxJob {
  return {
    language,
    code,
    input: extra.input,
    ...(extra.files === undefined ? {} : { files: extra.files }),
    limits: { ...LIMITS, ...extra.limits },
  };
}

/** The collected files as [path, UTF-8 text] pairs, in the order the result gives them. */
function texts(result: SandboxResult): Array<[string, string]> {
  return result.files.map((collected) => [collected.path, collected.content.toString('utf8')]);
}

/** Storage names for `test.each`; the backends exist only once `beforeAll` ran. */
const STORAGES = [IS_ROOT ? 'tmpfs' : 'default', 'directory'] as const;

function backendFor(storage: (typeof STORAGES)[number]): SandboxBackend {
  return storage === 'directory' ? directoryBackend : backend;
}

gate.describe('the working directory in and out of a real bubblewrap box', () => {
  beforeAll(async () => {
    scratchRoot = await mkdtemp(path.join(tmpdir(), 'tandem-sandbox-files-test-'));
    await chmod(scratchRoot, 0o711);
    backend = trackedBackend({ scratchRoot });
    directoryBackend = trackedBackend({ scratchRoot, workStorage: 'directory' });
    for (const candidate of [backend, directoryBackend]) {
      const health = await candidate.check();
      expect(health.problems).toEqual([]);
    }
  });

  afterEach(async () => {
    await drainBackends();
    // Every job, whatever it left in its working directory, is removed with it (mount included).
    expect(await readdir(scratchRoot)).toEqual([]);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(scratchRoot);
  });

  afterAll(async () => {
    await closeBackends();
    if (scratchRoot !== undefined) await rm(scratchRoot, { recursive: true, force: true });
  });

  describe('input files and written files', () => {
    test.each(STORAGES)(
      'python reads an input file by relative path and a new file it writes is collected (%s)',
      async (storage) => {
        const subject = backendFor(storage);
        const code = [
          'import csv, os',
          'with open("data/in.csv", newline="") as f:',
          '    rows = list(csv.DictReader(f))',
          'os.makedirs("out", exist_ok=True)',
          'with open("out/total.txt", "w") as f:',
          '    f.write(str(sum(int(row["amount"]) for row in rows)))',
          'result = {"cwd": os.getcwd(), "rows": len(rows), "listing": sorted(os.listdir("."))}',
        ].join('\n');
        const result = await subject.run(
          job('python', code, {
            files: [file('data/in.csv', 'name,amount\na,3\nb,4\n'), file('README', 'untouched')],
          }),
        );
        expect(result).toMatchObject({
          outcome: 'ok',
          value: { cwd: '/work', rows: 2, listing: ['README', 'data', 'out'] },
          deletedFiles: [],
          filesTruncated: false,
        });
        // Unchanged inputs are not sent back.
        expect(texts(result)).toEqual([['out/total.txt', '7']]);
      },
    );

    // Symlinks cannot be made from QuickJS; the host's refusal to follow them is tested in quickjs-host.int.test.ts.
    test('javascript uses the files global: read, write (with parents), list, exists and the path rules', async () => {
      const code = String.raw`
const csv = files.read('data/in.csv');
files.write('out/deep/upper.csv', csv.toUpperCase());
files.write('data/in.csv', csv + 'c,5\n');
const refused = {};
for (const bad of ['../escape', '/etc/passwd', 'a//b', '', 'a/./b', 'nul\0byte', 'x'.repeat(256)]) {
  try {
    files.write(bad, 'x');
    refused[bad.slice(0, 20)] = 'written';
  } catch (error) {
    refused[bad.slice(0, 20)] = error.name;
  }
}
let wrongType;
try { files.write('n.txt', 42); } catch (error) { wrongType = error.name; }
return {
  list: files.list(),
  exists: [files.exists('data/in.csv'), files.exists('missing'), files.exists('out')],
  refused,
  wrongType,
  api: Object.keys(files).sort(),
  frozen: Object.isFrozen(files),
};`;
      const result = await backend.run(
        job('javascript', code, { files: [file('data/in.csv', 'name,amount\na,3\n')] }),
      );
      expect(result.stderr).toBe('');
      expect(result.outcome).toBe('ok');
      expect(result.value).toEqual({
        list: ['data/in.csv', 'out/deep/upper.csv'],
        exists: [true, false, false],
        refused: {
          '../escape': 'TypeError',
          '/etc/passwd': 'TypeError',
          'a//b': 'TypeError',
          '': 'TypeError',
          'a/./b': 'TypeError',
          'nul\u0000byte': 'TypeError',
          xxxxxxxxxxxxxxxxxxxx: 'TypeError',
        },
        wrongType: 'TypeError',
        api: ['exists', 'list', 'read', 'write'],
        frozen: true,
      });
      expect(texts(result)).toEqual([
        ['data/in.csv', 'name,amount\na,3\nc,5\n'],
        ['out/deep/upper.csv', 'NAME,AMOUNT\nA,3\n'],
      ]);
      expect(result.deletedFiles).toEqual([]);
    });

    test.each(STORAGES)(
      'changed files are sent back and deleted inputs are listed; rewrites with the same bytes are not (%s)',
      async (storage) => {
        const subject = backendFor(storage);
        const code = [
          'import os',
          'open("changed.txt", "a").write(" and more")',
          'open("same-size.txt", "w").write("ABCD")',
          'open("rewritten.txt", "w").write("same")',
          'os.remove("deleted.txt")',
          'os.remove("dir/nested.txt")',
          'os.remove("became-dir")',
          'os.mkdir("became-dir")',
          'open("became-dir/inner", "w").write("new")',
          'os.rename("moved.txt", "moved-to.txt")',
        ].join('\n');
        const result = await subject.run(
          job('python', code, {
            files: [
              file('changed.txt', 'start'),
              file('same-size.txt', 'abcd'),
              file('rewritten.txt', 'same'),
              file('unchanged.txt', 'still'),
              file('deleted.txt', 'bye'),
              file('dir/nested.txt', 'bye'),
              file('became-dir', 'was a file'),
              file('moved.txt', 'moving'),
            ],
          }),
        );
        expect(result.outcome).toBe('ok');
        expect(texts(result)).toEqual([
          ['became-dir/inner', 'new'],
          ['changed.txt', 'start and more'],
          ['moved-to.txt', 'moving'],
          ['same-size.txt', 'ABCD'],
        ]);
        expect(result.deletedFiles).toEqual(['became-dir', 'deleted.txt', 'dir/nested.txt', 'moved.txt']);
        expect(result.filesTruncated).toBe(false);
      },
    );

    test('binary content round-trips byte for byte, and an unchanged binary input is not sent back', async () => {
      const everyByte = Buffer.from(Array.from({ length: 256 }, (_, index) => index));
      const code = [
        'data = open("bytes.bin", "rb").read()',
        'open("reversed.bin", "wb").write(data[::-1] + b"\\x00\\xff")',
        'result = len(data)',
      ].join('\n');
      const result = await backend.run(job('python', code, { files: [file('bytes.bin', everyByte)] }));
      expect(result).toMatchObject({ outcome: 'ok', value: 256, deletedFiles: [] });
      expect(result.files).toHaveLength(1);
      expect(result.files[0]?.path).toBe('reversed.bin');
      expect(
        result.files[0]?.content.equals(
          Buffer.concat([Buffer.from(everyByte).reverse(), Buffer.from([0, 255])]),
        ),
      ).toBe(true);
    });

    test('nested directories come back in path order, segment by segment', async () => {
      const code = [
        'import os',
        'for name in ["b/z/y/x.txt", "a-c", "a/b", "a/a/a/a/a.txt", "c", "a.b/c"]:',
        '    os.makedirs(os.path.dirname(name) or ".", exist_ok=True)',
        '    open(name, "w").write(name)',
      ].join('\n');
      const result = await backend.run(job('python', code, { files: [file('in/put/file.txt', 'kept')] }));
      expect(result.outcome).toBe('ok');
      expect(texts(result).map(([filePath]) => filePath)).toEqual([
        'a/a/a/a/a.txt',
        'a/b',
        'a-c',
        'a.b/c',
        'b/z/y/x.txt',
        'c',
      ]);
      expect(texts(result).every(([filePath, content]) => filePath === content)).toBe(true);
    });

    test('files written before a timeout are still collected', async () => {
      const code = 'open("partial.txt", "w").write("halfway")\nwhile True:\n    pass';
      const result = await backend.run(job('python', code, { limits: { timeoutMs: 1_000 } }));
      expect(result.outcome).toBe('timeout');
      expect(texts(result)).toEqual([['partial.txt', 'halfway']]);
    });
  });

  describe('what the runner will not read', () => {
    test.each(STORAGES)(
      'guest symlinks (to /etc/passwd, /proc/self/environ, a host file, /etc), FIFOs and sockets are not read (%s)',
      async (storage) => {
        const subject = backendFor(storage);
        const secret = `tandem-secret-${randomUUID()}`;
        const canary = path.join(tmpdir(), `tandem-canary-${randomUUID()}`);
        await writeFile(canary, secret, { mode: 0o644 });
        process.env.TANDEM_FILES_TEST_SECRET = secret;
        try {
          const code = [
            'import os, socket',
            'os.symlink("/etc/passwd", "passwd")',
            'os.symlink("/proc/self/environ", "environ")',
            'os.symlink("/proc/1/environ", "environ1")',
            'os.symlink(input, "canary")',
            'os.symlink("/etc", "etc")',
            'os.symlink(".", "loop")',
            'os.remove("given.txt")',
            'os.symlink("/etc/passwd", "given.txt")',
            'os.mkdir("sub")',
            'os.symlink("../../../../../../etc/passwd", "sub/up")',
            'os.mkfifo("fifo")',
            's = socket.socket(socket.AF_UNIX)',
            's.bind("sock")',
            'open("real.txt", "w").write("mine")',
          ].join('\n');
          const started = performance.now();
          const result = await subject.run(
            job('python', code, { input: canary, files: [file('given.txt', 'was a file')] }),
          );
          expect(result.stderr).toBe('');
          expect(result.outcome).toBe('ok');
          // A FIFO opened for reading would have blocked the collector until the test timed out.
          expect(performance.now() - started).toBeLessThan(10_000);
          expect(texts(result)).toEqual([['real.txt', 'mine']]);
          expect(result.deletedFiles).toEqual(['given.txt']);
          expect(result.filesTruncated).toBe(false);
          const everything =
            JSON.stringify(result) + result.files.map((f) => f.content.toString('latin1')).join('');
          expect(everything).not.toContain(secret);
          expect(everything).not.toContain('root:x:0:0');
        } finally {
          delete process.env.TANDEM_FILES_TEST_SECRET;
          await rm(canary, { force: true });
        }
      },
    );

    test('a file name that is not UTF-8 is skipped and the result says it is incomplete', async () => {
      const code = 'open(b"bad-\\xff-name", "w").write("x")\nopen("good.txt", "w").write("y")';
      const result = await backend.run(job('python', code));
      expect(result.outcome).toBe('ok');
      expect(texts(result)).toEqual([['good.txt', 'y']]);
      expect(result.filesTruncated).toBe(true);
    });
  });

  describe('caps on what comes back', () => {
    const writeFiles = (sizes: number[]): string =>
      [
        `for index, size in enumerate(${JSON.stringify(sizes)}):`,
        '    open(f"f{index}", "wb").write(b"x" * size)',
      ].join('\n');

    test('more files than maxFiles: the first ones in path order, and filesTruncated', async () => {
      const result = await backend.run(
        job('python', writeFiles([1, 1, 1, 1, 1]), { limits: { maxFiles: 3 } }),
      );
      expect(result.files.map((collected) => collected.path)).toEqual(['f0', 'f1', 'f2']);
      expect(result.filesTruncated).toBe(true);
    });

    test('exactly maxFiles files is not truncated', async () => {
      const result = await backend.run(job('python', writeFiles([1, 1, 1]), { limits: { maxFiles: 3 } }));
      expect(result.files).toHaveLength(3);
      expect(result.filesTruncated).toBe(false);
    });

    test('maxFiles 0 sends nothing back but still says something changed', async () => {
      const result = await backend.run(job('python', writeFiles([1]), { limits: { maxFiles: 0 } }));
      expect(result.files).toEqual([]);
      expect(result.filesTruncated).toBe(true);
    });

    test('a file over maxFileBytes is left out, the others still come', async () => {
      const result = await backend.run(
        job('python', writeFiles([10, 1001, 1000]), { limits: { maxFileBytes: 1000 } }),
      );
      expect(result.files.map((collected) => [collected.path, collected.content.length])).toEqual([
        ['f0', 10],
        ['f2', 1000],
      ]);
      expect(result.filesTruncated).toBe(true);
    });

    test('maxTotalFileBytes cuts the list at the first file that does not fit', async () => {
      const result = await backend.run(
        job('python', writeFiles([400, 400, 400, 10]), { limits: { maxTotalFileBytes: 1000 } }),
      );
      expect(result.files.map((collected) => collected.path)).toEqual(['f0', 'f1']);
      expect(result.filesTruncated).toBe(true);
    });

    test('an unchanged input larger than the per-file cap is not a truncation', async () => {
      const big = Buffer.alloc(4096, 7);
      const result = await backend.run(
        job('python', 'open("small", "w").write("s")', {
          files: [file('big.bin', big)],
          limits: { maxFileBytes: 1024 },
        }),
      );
      expect(texts(result)).toEqual([['small', 's']]);
      expect(result.filesTruncated).toBe(false);
    });

    test.each(STORAGES)(
      '20,000 files: collection stays bounded and quick, the supervisor does not hang (%s)',
      async (storage) => {
        const subject = backendFor(storage);
        const code = [
          'for index in range(20000):',
          '    open(f"f{index:05d}", "w").close()',
          'open("given.txt", "w").write("changed")',
          'result = 20000',
        ].join('\n');
        const inputs = [file('given.txt', 'original'), file('kept.txt', 'kept')];
        const overhead = storage === 'directory' ? 20_000 : 5_000;

        // The default caps: exactly the first 100 by path.
        let started = performance.now();
        const capped = await subject.run(job('python', code, { files: inputs }));
        expect(capped.stderr).toBe('');
        expect(capped).toMatchObject({ outcome: 'ok', value: 20000, filesTruncated: true, deletedFiles: [] });
        expect(capped.files.map((collected) => collected.path)).toEqual(
          Array.from({ length: 100 }, (_, index) => `f${String(index).padStart(5, '0')}`),
        );
        expect(performance.now() - started - capped.durationMs).toBeLessThan(overhead);

        // No count cap: everything comes back.
        started = performance.now();
        const all = await subject.run(
          job('python', code, { files: inputs, limits: { maxFiles: 1_000_000 } }),
        );
        expect(all).toMatchObject({ outcome: 'ok', filesTruncated: false, deletedFiles: [] });
        expect(all.files).toHaveLength(20_001);
        expect(performance.now() - started - all.durationMs).toBeLessThan(overhead);

        // The collector's own bound on entries read: it stops, says so, and still finds the inputs.
        const bounded = trackedBackend({
          scratchRoot,
          workStorage: storage === 'directory' ? 'directory' : undefined,
          maxCollectEntries: 5_000,
        });
        started = performance.now();
        const partial = await bounded.run(
          job('python', code, { files: inputs, limits: { maxFiles: 1_000_000 } }),
        );
        expect(partial).toMatchObject({ outcome: 'ok', filesTruncated: true, deletedFiles: [] });
        expect(partial.files.length).toBeGreaterThan(1_000);
        expect(partial.files.length).toBeLessThanOrEqual(5_000);
        expect(performance.now() - started - partial.durationMs).toBeLessThan(overhead);
      },
      120_000,
    );

    test.each(STORAGES)(
      'a 10,000-deep directory tree neither overflows nor hangs the collector, and is removed (%s)',
      async (storage) => {
        const subject = backendFor(storage);
        const code = [
          'import os',
          'open("top.txt", "w").write("top")',
          'for _ in range(10000):',
          '    os.mkdir("d")',
          '    os.chdir("d")',
          'open("bottom.txt", "w").write("bottom")',
        ].join('\n');
        const started = performance.now();
        const result = await subject.run(job('python', code));
        const wall = performance.now() - started;
        expect(result.stderr).toBe('');
        expect(result.outcome).toBe('ok');
        expect(texts(result)).toEqual([['top.txt', 'top']]);
        expect(result.filesTruncated).toBe(true);
        // The walk stops at 64 levels; what remains is removal: an O(1) lazy umount for a tmpfs, but
        // `rm -rf` of 10,000 nested directories takes seconds on this host's ext4 (10 s measured by hand).
        expect(wall - result.durationMs).toBeLessThan(storage === 'directory' ? 40_000 : 3_000);
      },
      60_000,
    );
  });

  describe('the working directory itself', () => {
    withRoot.test('the tmpfs working directory is capped in bytes and in files', async () => {
      const small = trackedBackend({ scratchRoot, workBytes: 1024 * 1024, workInodes: 500 });
      const code = [
        'import errno',
        'outcome = {}',
        'try:',
        '    open("big", "wb").write(b"a" * (2 << 20))',
        'except OSError as error:',
        '    outcome["big"] = errno.errorcode[error.errno]',
        'created = 0',
        'try:',
        '    for index in range(1000):',
        '        open(f"n{index}", "w").close()',
        '        created += 1',
        'except OSError as error:',
        '    outcome["many"] = errno.errorcode[error.errno]',
        'outcome["created"] = created',
        'result = outcome',
      ].join('\n');
      const result = await small.run(job('python', code));
      expect(result.outcome).toBe('ok');
      expect(result.value).toMatchObject({ big: 'ENOSPC', many: 'ENOSPC' });
      expect((result.value as { created: number }).created).toBeLessThan(500);
    });

    test('a plain-directory working directory caps each file with RLIMIT_FSIZE', async () => {
      const small = trackedBackend({ scratchRoot, workStorage: 'directory', workBytes: 1024 * 1024 });
      const code = [
        'import errno',
        'try:',
        '    open("big", "wb").write(b"a" * (2 << 20))',
        '    result = "wrote"',
        'except OSError as error:',
        '    result = errno.errorcode[error.errno]',
      ].join('\n');
      const result = await small.run(job('python', code));
      expect(result).toMatchObject({ outcome: 'ok', value: 'EFBIG' });
    });

    test.each(STORAGES)(
      "one job's files are never visible to the next or to a concurrent one (%s)",
      async (storage) => {
        const subject = backendFor(storage);
        const first = await subject.run(
          job('python', 'open("secret.txt", "w").write("job one")', { files: [file('mine.txt', 'one')] }),
        );
        expect(texts(first)).toEqual([['secret.txt', 'job one']]);
        const listing = 'import os\nresult = sorted(os.listdir("."))';
        const second = await subject.run(job('python', listing, { files: [file('theirs.txt', 'two')] }));
        expect(second.value).toEqual(['theirs.txt']);
        const concurrent = await Promise.all(
          [1, 2, 3].map((id) =>
            subject.run(
              job(
                'python',
                `import os, time\nopen("${id}.txt", "w").write("x")\ntime.sleep(0.3)\n${listing}`,
                {
                  files: [file(`in-${id}`, String(id))],
                },
              ),
            ),
          ),
        );
        expect(concurrent.map((result) => result.value)).toEqual([
          ['1.txt', 'in-1'],
          ['2.txt', 'in-2'],
          ['3.txt', 'in-3'],
        ]);
      },
    );

    test('input files that do not fit the working directory are a sandbox_error', async () => {
      const small = trackedBackend({ scratchRoot, workBytes: 1024 });
      const result = await small.run(
        job('python', 'result = 1', { files: [file('big', Buffer.alloc(2048))] }),
      );
      expect(result).toMatchObject({ outcome: 'sandbox_error', files: [], deletedFiles: [] });
      expect(result.errorMessage).toContain('do not fit');
    });
  });

  describe('malformed jobs reject', () => {
    test.each([
      ['an absolute path', [file('/etc/passwd', 'x')]],
      ['a .. segment', [file('../escape', 'x')]],
      ['a .. in the middle', [file('a/../../b', 'x')]],
      ['a . segment', [file('./a', 'x')]],
      ['an empty segment', [file('a//b', 'x')]],
      ['a trailing slash', [file('a/', 'x')]],
      ['an empty path', [file('', 'x')]],
      ['a NUL byte', [file('a\u0000b', 'x')]],
      ['a lone surrogate', [file('a\ud800', 'x')]],
      ['a segment over 255 bytes', [file('x'.repeat(256), 'x')]],
      ['a path over 2048 bytes', [file(Array.from({ length: 20 }, () => 'y'.repeat(200)).join('/'), 'x')]],
      ['a repeated path', [file('a', 'x'), file('a', 'y')]],
      ['a file that is also a directory', [file('a', 'x'), file('a/b', 'y')]],
    ] as const)('a job file with %s rejects with a TypeError', async (_name, files) => {
      await expect(backend.run(job('python', 'result = 1', { files: [...files] }))).rejects.toThrow(
        TypeError,
      );
    });

    test('content that is not a Buffer and bad file caps reject', async () => {
      const notBuffer = { path: 'a', content: 'text' } as unknown as SandboxFile;
      await expect(backend.run(job('python', 'result = 1', { files: [notBuffer] }))).rejects.toThrow(
        TypeError,
      );
      await expect(backend.run(job('python', 'result = 1', { limits: { maxFiles: -1 } }))).rejects.toThrow(
        RangeError,
      );
      await expect(
        backend.run(job('python', 'result = 1', { limits: { maxFileBytes: 1.5 } })),
      ).rejects.toThrow(RangeError);
    });
  });
});
