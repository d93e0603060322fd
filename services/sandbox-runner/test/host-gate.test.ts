import { describe, expect, test } from 'vitest';

import { gateMode } from './helpers/host.js';

describe('the host gate of the sandbox suites', () => {
  test('runs the tests when nothing is missing, in CI or not', () => {
    expect(gateMode([], false)).toEqual({ kind: 'run' });
    expect(gateMode([], true)).toEqual({ kind: 'run' });
  });

  test('skips them with every reason outside CI', () => {
    expect(gateMode(['root: uid 1000', 'cgroups: none'], false)).toEqual({
      kind: 'skip',
      reason: 'root: uid 1000; cgroups: none',
    });
  });

  test('fails them under CI, naming what is missing', () => {
    const mode = gateMode(['bubblewrap: /usr/bin/bwrap is not installed'], true);
    expect(mode.kind).toBe('fail');
    expect(mode).toMatchObject({
      message: expect.stringContaining(
        'CI=true and this host lacks what the test needs: bubblewrap: /usr/bin/bwrap is not installed',
      ) as unknown,
    });
  });
});
