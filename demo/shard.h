/*
** shard.h — sharding a photo library over many ram-index runs, and merging
** the shards (demo/shard.c; docs/SCALE.md).
**
**     ram-index --files-from LIST --shard 2/4 shard2.db     # one slice of LIST
**     ram-index --merge serving.db shard0.db shard1.db ...   # entries, no inference
**     ram-index --merge new1.db --shard 1/8 --root DIR shard0.db ...  # re-sharding
*/
#ifndef RAM_DEMO_SHARD_H
#define RAM_DEMO_SHARD_H

#include <sqlite3.h>

/* Parses "I/N" (0 <= I < N <= 1000000) into *pI, *pN. Returns 1, or 0 when
** z is not of that form. */
int ram_shard_parse(const char *z, unsigned *pI, unsigned *pN);

/* The shard (0 .. n-1) of a file named name: XXH3-64 of the name with
** leading "./", repeated '/', "/./" and a trailing '/' removed, modulo n.
** name is the path relative to the folder indexed (or the line of the
** --files-from list, as written): the rule depends on nothing else, so
** adding files never moves old ones, and every machine computes the same
** slices. */
unsigned ram_shard_of(const char *name, unsigned n);

/* The absolute, lexically normalised path of name read from folder dir
** (name itself when absolute): "." and ".." and repeated '/' resolved
** without looking at the disk. malloc'd, or NULL (out of memory). */
char *ram_path_normalised(const char *dir, const char *name);

/* full relative to dir when under it (as ram-index stores names), else
** full itself; points into full. */
const char *ram_path_relative(const char *full, const char *dir);

/* What a merge did, summed over the shards. */
typedef struct RamMergeCounts {
    long long nNew;       /* rows whose path the target lacked */
    long long nUnchanged; /* rows the target had with the same image key */
    long long nChanged;   /* rows the target had with another image: re-pointed */
    long long nNoPath;    /* rows without a path: left out (nothing to name them by) */
    long long nOther;     /* rows of another slice than the one asked for: left out */
} RamMergeCounts;

/* A slice to keep (re-sharding): only the rows whose name falls in slice i
** of n by ram_shard_of, where the name is the row's path made absolute
** (from its shard's folder) and normalised, then relative to zRoot (a
** realpath) when zRoot is not "/"; with zRoot "/" the absolute path itself
** (as a --files-from list of absolute names is sliced). */
typedef struct RamMergeSlice {
    unsigned i, n;
    const char *zRoot;
} RamMergeSlice;

/* The name ram_shard_of slices for the file full (absolute, normalised)
** under root (see RamMergeSlice): points into full, or NULL when full is
** not under root. */
const char *ram_shard_name(const char *full, const char *zRoot);

/* Stores every row of the ram_index table `table` of the database file
** zShard into the table of the same name of db's main database, by its
** entry column (docs/INDEX.md, "Entries that travel": no inference), with
** its caption, date, camera and place columns (caption, taken ...
** longitude). Paths
** are re-based: a relative name in the shard is read from the shard's
** folder, then stored relative to zDbDir (the target database's folder,
** realpath) when under it, else absolute. Idempotent: a row already there
** with the same key is left alone. With pSlice (else NULL), only the rows
** of that slice are stored (re-sharding: N shards into M, no inference); a
** row not under pSlice->zRoot is an error (its slice is unknown). Commits
** every 256 rows. Returns
** SQLITE_OK, or an error code with *pzErr set (sqlite3_free) naming the
** shard; the rows of earlier commits stay. */
int ram_shard_merge(sqlite3 *db, const char *table, const char *zDbDir, const char *zShard, const RamMergeSlice *pSlice,
                    RamMergeCounts *pCounts, char **pzErr);

#endif
