import { ErrorCodes } from '@tandem/contracts';
import { describe, expect, it } from 'vitest';
import { checkFileWrite, checkSandboxFiles, fileText, workspacePath } from '../src/domain/workspace.js';

// The workspace rules, without Postgres: paths, caps on a write and on what a program wrote, text views.

const limits = { maxFileBytes: 10, maxTotalBytes: 20, maxFiles: 3 };
const limit = expect.objectContaining({ code: ErrorCodes.WORKSPACE_LIMIT });

describe('workspacePath', () => {
  it('normalises a path inside the workspace and refuses one that leaves it', () => {
    expect(workspacePath('./reports//draft.md')).toBe('reports/draft.md');
    expect(workspacePath('', true)).toBe('');
    expect(() => workspacePath('../secret.txt')).toThrow(
      expect.objectContaining({ code: ErrorCodes.TOOL_PATH_REJECTED }),
    );
  });
});

describe('checkFileWrite', () => {
  it('allows a write within every cap', () => {
    expect(() =>
      checkFileWrite({ path: 'a', size: 10, others: { bytes: 10, files: 2 } }, limits),
    ).not.toThrow();
  });

  it('refuses a file over the file cap, a workspace over the total, and one file too many', () => {
    expect(() => checkFileWrite({ path: 'a', size: 11, others: { bytes: 0, files: 0 } }, limits)).toThrow(
      limit,
    );
    expect(() => checkFileWrite({ path: 'a', size: 5, others: { bytes: 16, files: 1 } }, limits)).toThrow(
      limit,
    );
    expect(() => checkFileWrite({ path: 'a', size: 1, others: { bytes: 0, files: 3 } }, limits)).toThrow(
      limit,
    );
  });
});

describe('checkSandboxFiles', () => {
  const current = [
    { path: 'a', size: 8 },
    { path: 'b', size: 8 },
  ];

  it('counts replaced files once and deleted files not at all', () => {
    expect(() =>
      checkSandboxFiles(
        current,
        [
          { path: 'a', size: 10, deleted: false },
          { path: 'b', size: 0, deleted: true },
          { path: 'c', size: 10, deleted: false },
        ],
        limits,
      ),
    ).not.toThrow();
  });

  it('refuses a file over the file cap, and a result over the total or the file count', () => {
    expect(() => checkSandboxFiles([], [{ path: 'a', size: 11, deleted: false }], limits)).toThrow(limit);
    expect(() => checkSandboxFiles(current, [{ path: 'c', size: 5, deleted: false }], limits)).toThrow(limit);
    expect(() =>
      checkSandboxFiles(
        [],
        ['a', 'b', 'c', 'd'].map((path) => ({ path, size: 1, deleted: false })),
        limits,
      ),
    ).toThrow(limit);
  });
});

describe('fileText', () => {
  it('shows UTF-8 as text and other bytes as base64', () => {
    expect(fileText(new TextEncoder().encode('héllo'))).toEqual({ content: 'héllo', encoding: 'utf8' });
    expect(fileText(new Uint8Array([0xff, 0xfe]))).toEqual({ content: '//4=', encoding: 'base64' });
  });
});
