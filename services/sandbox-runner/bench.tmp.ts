import { performance } from 'node:perf_hooks';
import { createBwrapBackend } from './src/sandbox/index.js';
const b = createBwrapBackend();
const limits = { timeoutMs: 5000, maxOutputBytes: 10000 };
for (const language of ['python', 'javascript'] as const) {
  const code = language === 'python' ? 'result = 1' : 'return 1';
  await b.run({ language, code, limits });
  const times: number[] = [];
  for (let i = 0; i < 30; i++) { const t = performance.now(); const r = await b.run({ language, code, limits }); times.push(performance.now() - t); if (r.outcome !== 'ok') console.log(r); }
  times.sort((a, b) => a - b);
  console.log(language, 'median', times[15]!.toFixed(1), 'p90', times[27]!.toFixed(1));
  const t0 = performance.now();
  await Promise.all(Array.from({ length: 30 }, () => b.run({ language, code, limits })));
  console.log(language, 'throughput 30 at once', (30000 / (performance.now() - t0)).toFixed(1), 'jobs/s');
}
