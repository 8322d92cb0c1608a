/** Full path of the extension file (lib/ram0.so). */
export function getLoadablePath(): string;
/** Full path of the bundled default model. */
export function getDefaultModelPath(): string;
/** Loads the extension into a better-sqlite3 or libsql Database; returns db. */
export function load<T extends { loadExtension(path: string): unknown }>(db: T): T;
