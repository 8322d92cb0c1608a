// sqlite-ram for Node: the loadable SQLite extension and its default model,
// for better-sqlite3 and libsql (any connection with loadExtension(path)).
//
//   const Database = require("better-sqlite3");   // or require("libsql")
//   const ram = require("sqlite-ram");
//   const db = new Database("photos.db");
//   ram.load(db);
//   db.prepare("SELECT ram_tags(?) AS tags").get([fs.readFileSync("cat.jpg")]);
//
// Bind a Buffer inside an array, `.get([buf])`: libsql (0.5) takes a lone
// Buffer argument for an array of parameters and crashes the process
// (README "Node"); better-sqlite3 accepts both forms.
//
// The package holds lib/ram0.so and share/sqlite-ram/default.ram, the layout of
// `make install`: the extension finds the model relative to its own folder.
"use strict";
const path = require("path");

/** Full path of the extension file (lib/ram0.so). */
function getLoadablePath() {
  return path.join(__dirname, "lib", "ram0.so");
}

/** Full path of the bundled default model. */
function getDefaultModelPath() {
  return path.join(__dirname, "share", "sqlite-ram", "default.ram");
}

/** Loads the extension into a better-sqlite3 or libsql Database. */
function load(db) {
  if (!db || typeof db.loadExtension !== "function") {
    throw new TypeError("sqlite-ram: load(db) needs a better-sqlite3 or libsql Database (with loadExtension)");
  }
  db.loadExtension(getLoadablePath());
  return db;
}

module.exports = { getLoadablePath, getDefaultModelPath, load };
