import { listWorkspaceFiles } from '@tandem/db';
import { z } from 'zod';
import { resolvedArguments } from '../domain/advance.js';
import { workspacePath } from '../domain/workspace.js';
import type { InlineRunner } from './types.js';

const ListArguments = z.object({ prefix: z.string().optional() });

/** `list_files`: the workspace's files under `prefix` (or all), sorted by path. */
export const listFilesRunner: InlineRunner = {
  tool: 'list_files',
  async run({ tx, state }, step) {
    const prefix = workspacePath(
      ListArguments.parse(resolvedArguments(state.steps, step)).prefix ?? '',
      true,
    );
    const files = await listWorkspaceFiles(tx, state.task.id, prefix);
    return { files: files.map((file) => ({ path: file.path, size: file.size })) };
  },
};
