import type { Tx } from '../transaction.js';
import { toText } from '../text.js';

/*
 * The SandboxRunFile table: the one module that writes it. The files a finished sandbox run wrote or
 * deleted, stored with its result (writer: sandbox-runner).
 */

/** A file a run wrote (with its content) or deleted. */
export interface SandboxRunFileInput {
  path: string;
  content?: Uint8Array<ArrayBuffer>;
  size: number;
  deleted: boolean;
}

/** A stored file of a run, without its content. */
export interface SandboxRunFileEntry {
  path: string;
  size: number;
  deleted: boolean;
}

/** In the caller's transaction: the files of a run, their names made safe for Postgres text. */
export async function insertSandboxRunFiles(
  tx: Tx,
  runId: string,
  files: readonly SandboxRunFileInput[],
): Promise<void> {
  if (files.length === 0) return;
  await tx
    .insertInto('SandboxRunFile')
    .values(
      files.map((file) => ({
        runId,
        path: toText(file.path),
        // A view on the same bytes, as pg binds a bytea.
        content:
          file.content === undefined
            ? null
            : Buffer.from(file.content.buffer, file.content.byteOffset, file.content.byteLength),
        size: file.size,
        deleted: file.deleted,
      })),
    )
    .execute();
}

/** The files of a run (names, sizes, deletions; no content), in path order. */
export async function sandboxRunFiles(tx: Tx, runId: string): Promise<SandboxRunFileEntry[]> {
  return tx
    .selectFrom('SandboxRunFile')
    .select(['path', 'size', 'deleted'])
    .where('runId', '=', runId)
    .orderBy('path')
    .execute();
}
