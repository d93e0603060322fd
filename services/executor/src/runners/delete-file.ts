import { deleteWorkspaceFiles } from '@tandem/db';
import { z } from 'zod';
import { resolvedArguments } from '../domain/advance.js';
import { workspacePath } from '../domain/workspace.js';
import type { InlineRunner } from './types.js';

const PathArguments = z.object({ path: z.string() });

/**
 * `delete_file`: deletes the file at exactly `path` (a directory prefix deletes nothing); a missing file
 * is not an error (`deleted: false`): the state the step asks for already holds.
 */
export const deleteFileRunner: InlineRunner = {
  tool: 'delete_file',
  async run({ tx, state }, step) {
    const path = workspacePath(PathArguments.parse(resolvedArguments(state.steps, step)).path);
    return { path, deleted: (await deleteWorkspaceFiles(tx, state.task.id, [path])) > 0 };
  },
};
