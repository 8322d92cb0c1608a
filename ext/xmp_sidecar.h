/*
** xmp_sidecar.h — writing tags as keywords into an XMP sidecar (xmp_sidecar.c),
** for ram_xmp() (func_xmp.c) and, through it, ram-index --write-xmp.
*/
#ifndef RAM_XMP_SIDECAR_H
#define RAM_XMP_SIDECAR_H

/* Namespace of the properties that record which keywords are automatic. */
#define RAM_XMP_NS "http://sqlite-ram.invalid/ns/1.0/"
#define RAM_XMP_PREFIX "sqliteram"

/* Merges the nTag keywords azTag (UTF-8) into the XMP text zOld (nOld bytes;
** NULL or blank: a new sidecar) and returns the new text in *pzOut
** (sqlite3_free):
** - dc:subject gets each keyword, lr:hierarchicalSubject each "ROOT|keyword"
**   (none when zRoot is NULL or ""), unless already there;
** - the keywords this call added are listed in sqliteram:autoSubject and
**   sqliteram:autoHierarchicalSubject, and the ones a previous call listed
**   there are removed first, so a rerun replaces only automatic keywords and
**   never one the user wrote; zModel (may be NULL) goes to sqliteram:taggerModel;
** - every other property of zOld is kept as the XMP toolkit parsed it.
** zOld that is not well-formed XML, holds a DOCTYPE, has no RDF, or that the
** toolkit refuses is an error. Returns SQLITE_OK, SQLITE_NOMEM, or
** SQLITE_ERROR with *pzErr (sqlite3_free) saying why, without a prefix. */
int ram__xmp_merge(const char *zOld, int nOld, const char *const *azTag, int nTag, const char *zRoot,
                   const char *zModel, char **pzOut, char **pzErr);

#endif
