import { createHash } from 'node:crypto';
import { putWorkspaceFiles, workspaceUsage } from '@tandem/db';
import { z } from 'zod';
import { resolvedArguments } from '../domain/advance.js';
import { checkFileWrite, workspacePath } from '../domain/workspace.js';
import type { InlineRunner } from './types.js';

const WriteArguments = z.object({ path: z.string(), content: z.string() });

/** `write_file`: creates or replaces one workspace file within the caps (WORKSPACE.LIMIT). */
export const writeFileRunner: InlineRunner = {
  tool: 'write_file',
  async run({ tx, deps, state }, step) {
    const args = WriteArguments.parse(resolvedArguments(state.steps, step));
    const path = workspacePath(args.path);
    const content = Buffer.from(args.content, 'utf8');
    const size = content.byteLength;
    checkFileWrite({ path, size, others: await workspaceUsage(tx, state.task.id, path) }, deps.workspace);
    const sha256 = createHash('sha256').update(content).digest('hex');
    await putWorkspaceFiles(tx, state.task.id, [{ path, content, size, sha256, stepId: step.stepId }]);
    return { path, size, sha256 };
  },
};
