import { ErrorCodes, TandemError } from '@tandem/contracts';
import { readWorkspaceFile } from '@tandem/db';
import { z } from 'zod';
import { resolvedArguments } from '../domain/advance.js';
import { fileText, workspacePath } from '../domain/workspace.js';
import type { InlineRunner } from './types.js';

const PathArguments = z.object({ path: z.string() });

/** `read_file`: one workspace file as text (or base64); WORKSPACE.FILE_NOT_FOUND when there is none. */
export const readFileRunner: InlineRunner = {
  tool: 'read_file',
  async run({ tx, state }, step) {
    const path = workspacePath(PathArguments.parse(resolvedArguments(state.steps, step)).path);
    const file = await readWorkspaceFile(tx, state.task.id, path);
    if (file === null)
      throw new TandemError(ErrorCodes.WORKSPACE_FILE_NOT_FOUND, `the workspace has no file ${path}`);
    const text = fileText(file.content);
    return { path, content: text.content, encoding: text.encoding, size: file.size };
  },
};
