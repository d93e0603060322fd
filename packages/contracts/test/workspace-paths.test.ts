import { describe, expect, it } from 'vitest';
import { isInWorkspaceDirectory, normalizeWorkspaceDirectory, normalizeWorkspacePath } from '../src/index.js';

describe('normalizeWorkspacePath', () => {
  it.each([
    ['reports/q1.csv', 'reports/q1.csv'],
    ['./reports/q1.csv', 'reports/q1.csv'],
    ['reports//q1.csv', 'reports/q1.csv'],
    ['reports/./q1.csv', 'reports/q1.csv'],
    ['reports/q1.csv/', 'reports/q1.csv'],
    ['.hidden', '.hidden'],
    ['a..b/c...d.txt', 'a..b/c...d.txt'],
    ['100%.txt', '100%.txt'],
    ['report 2024 (final).md', 'report 2024 (final).md'],
    ['caf\u0065\u0301.txt', 'caf\u00e9.txt'], // NFC
    ['données/résumé.txt', 'données/résumé.txt'],
  ])('normalises %j to %j', (raw, expected) => {
    expect(normalizeWorkspacePath(raw)).toEqual({ ok: true, path: expected });
  });

  it.each([
    ['empty', ''],
    ['only dots and slashes', './/.'],
    ['absolute', '/etc/passwd'],
    ['absolute with a backslash', '\\etc\\passwd'],
    ['drive with a backslash', 'C:\\Windows\\win.ini'],
    ['drive with a slash', 'C:/Windows/win.ini'],
    ['drive-relative', 'c:boot.ini'],
    ['UNC', '\\\\server\\share\\x'],
    ['UNC with slashes', '//server/share/x'],
    ['parent', '..'],
    ['leading parent', '../secrets.txt'],
    ['inner parent', 'reports/../../etc/passwd'],
    ['trailing parent', 'reports/..'],
    ['dots only', '...'],
    ['dots and a space', '.. /x'],
    ['backslash separator', 'reports\\q1.csv'],
    ['backslash parent', '..\\secrets'],
    ['NUL', 'a.txt\u0000.png'],
    ['newline', 'a\nb'],
    ['tab', 'a\tb'],
    ['DEL', 'a\u007fb'],
    ['C1 control', 'a\u0085b'],
    ['encoded parent and slash', '%2e%2e%2fsecrets'],
    ['encoded parent, upper case', '%2E%2E/secrets'],
    ['half-encoded parent', '.%2e/secrets'],
    ['encoded slash with a parent', 'a%2f..%2fb'],
    ['double-encoded parent', '%252e%252e/secrets'],
    ['double-encoded slash', '..%252fsecrets'],
    ['triple-encoded parent', '%25252e%25252e/x'],
    ['overlong slash', '..%c0%afsecrets'],
    ['overlong dot', '%c0%ae%c0%ae/secrets'],
    ['3-byte overlong slash', '..%e0%80%afx'],
    ['encoded NUL', 'a.txt%00.png'],
    ['encoded backslash', '..%5csecrets'],
    ['encoded absolute', '%2fetc/passwd'],
    ['encoded single dot segment', 'a/%2e/b'],
    ['ever-deeper encoding', '%2525252525252e'],
    ['one dot leader', '\u2024\u2024/secrets'],
    ['two dot leader', '\u2025/secrets'],
    ['fullwidth full stop', '\uff0e\uff0e/secrets'],
    ['small full stop', '\ufe52\ufe52/x'],
    ['division slash', '..\u2215secrets'],
    ['fraction slash', 'a\u2044b'],
    ['fullwidth solidus', '..\uff0fsecrets'],
    ['fullwidth reverse solidus', '..\uff3csecrets'],
    ['set minus', 'a\u2216b'],
    ['encoded fullwidth full stop', '%ef%bc%8e%ef%bc%8e/x'],
    ['right-to-left override', 'invoice\u202etxt.exe'],
    ['zero-width space', 'a\u200bb'],
    ['lone surrogate', 'a\ud800b'],
    ['too long', `${'a'.repeat(513)}`],
    ['too many segments', Array.from({ length: 33 }, () => 'd').join('/')],
    ['segment over 255 bytes', `${'é'.repeat(128)}.txt`],
  ])('refuses %s', (_label, raw) => {
    const result = normalizeWorkspacePath(raw);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason.length).toBeGreaterThan(5);
  });

  it('says why, in words a model can act on', () => {
    const absolute = normalizeWorkspacePath('/etc/passwd');
    expect(!absolute.ok && absolute.reason).toContain('reports/q1.csv');
    const encoded = normalizeWorkspacePath('%2e%2e/x');
    expect(!encoded.ok && encoded.reason).toContain('percent-encoded');
  });

  it('accepts the limits exactly', () => {
    const longest = `${'a'.repeat(255)}/${'b'.repeat(255)}/`;
    expect(longest).toHaveLength(512);
    expect(normalizeWorkspacePath(longest).ok).toBe(true);
    expect(normalizeWorkspacePath(`${longest}c`).ok).toBe(false);
    expect(normalizeWorkspacePath('é'.repeat(127)).ok).toBe(true);
    expect(normalizeWorkspacePath(Array.from({ length: 32 }, () => 'd').join('/')).ok).toBe(true);
  });
});

describe('normalizeWorkspaceDirectory', () => {
  it('treats empty, . and ./ as the root', () => {
    for (const raw of [undefined, '', '.', './'])
      expect(normalizeWorkspaceDirectory(raw)).toEqual({ ok: true, path: '' });
  });

  it('normalises a directory and refuses what a path refuses', () => {
    expect(normalizeWorkspaceDirectory('./reports/')).toEqual({ ok: true, path: 'reports' });
    for (const raw of ['/', '..', '../x', '%2e%2e', 'C:\\', 'a\u0000'])
      expect(normalizeWorkspaceDirectory(raw).ok).toBe(false);
  });

  it('matches whole directory names only', () => {
    expect(isInWorkspaceDirectory('reports/q1.csv', 'reports')).toBe(true);
    expect(isInWorkspaceDirectory('reports-old/q1.csv', 'reports')).toBe(false);
    expect(isInWorkspaceDirectory('reports', 'reports')).toBe(false);
    expect(isInWorkspaceDirectory('anything', '')).toBe(true);
  });
});
