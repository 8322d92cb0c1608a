/*
** xmp_sidecar.c — merges tags into an XMP sidecar as keywords, the form photo
** managers read (Lightroom, darktable, digiKam, immich: dc:subject and
** lr:hierarchicalSubject), without losing anything the user wrote.
**
**     char *zXmp = 0, *zErr = 0;
**     const char *az[] = {"dog", "grass"};
**     ram__xmp_merge(zOld, nOld, az, 2, "auto", zDigest, &zXmp, &zErr);
**
** WHY A LIBRARY. An XMP sidecar is RDF/XML: the same keyword list can be
** written as nested elements or attributes, with any namespace prefixes,
** inside or outside an xpacket, beside properties of tools we have never
** heard of. Editing it as text would lose or corrupt some of them; exempi
** (Debian libexempi-dev, the freedesktop.org wrapper of Adobe's XMP Toolkit
** that darktable's and GNOME's tools use) parses it into the XMP data model
** and writes it back with every property kept.
**
** WHY EXPAT FIRST. exempi prints the message of every parse error on stderr
** (its set_error), which a library loaded into someone's process must not
** do. Text that expat (which exempi parses with) finds well-formed, without a
** DOCTYPE (refused: entity expansion), and that declares the RDF namespace
** is handed to exempi; anything else is refused here with expat's reason and
** line, so a corrupt sidecar gives an SQL error and stays unwritten. (Only
** well-formed XML that the toolkit still rejects, mostly a broken RDF
** structure, makes exempi print its one line; a 2x100 s libFuzzer run of
** fuzz_sql over ram_xmp found no crash. func_xmp.c checks the tags are
** valid UTF-8 for the same reason.)
**
** HOW AUTOMATIC KEYWORDS ARE TRACKED. The keywords a call adds are listed in
** sqliteram:autoSubject / sqliteram:autoHierarchicalSubject (a private
** namespace, RAM_XMP_NS). The next call first removes exactly those from
** dc:subject / lr:hierarchicalSubject, then adds the new tags that are not
** already present and lists only those. A keyword the user had written
** before is never listed, so never removed; a keyword the user deletes is
** added again by the next run if the tagger still selects it.
**
** GLOBAL STATE: exempi's initialisation and namespace registrations (process
** lifetime, done once under pthread_once; never terminated, since another
** user of exempi in the host process may rely on it). Each call works on its
** own XmpPtr; exempi keeps its error code per thread.
*/
#include "ext.h"
SQLITE_EXTENSION_INIT3

#include "xmp_sidecar.h"

#include <exempi/xmp.h>
#include <exempi/xmpconsts.h>
#include <expat.h>
#include <pthread.h>
#include <string.h>

#define RDF_NS "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
#define LR_NS "http://ns.adobe.com/lightroom/1.0/"

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_bInitOk; /* written once inside pthread_once */

static void xmp_global_init(void)
{
    if (!xmp_init()) return;
    XmpStringPtr s = xmp_string_new();
    if (!s) return;
    /* lr is not among the toolkit's built-in namespaces. */
    g_bInitOk = xmp_register_namespace(LR_NS, "lr", s) && xmp_register_namespace(RAM_XMP_NS, RAM_XMP_PREFIX, s);
    xmp_string_free(s);
}

/* ------------------------------------------------------------------ the well-formedness check */

struct xml_check {
    XML_Parser p;
    int bDoctype;
};

static void XMLCALL on_doctype(void *pUser, const XML_Char *zName, const XML_Char *zSys, const XML_Char *zPub,
                               int bInternal)
{
    struct xml_check *c = pUser;
    c->bDoctype = 1;
    XML_StopParser(c->p, XML_FALSE);
}

/* SQLITE_OK when z is well-formed XML without DOCTYPE that declares RDF;
** else SQLITE_ERROR with *pzErr. */
static int check_xml(const char *z, int n, char **pzErr)
{
    struct xml_check c = {0};
    c.p = XML_ParserCreate(0);
    if (!c.p) return SQLITE_NOMEM;
    XML_SetUserData(c.p, &c);
    XML_SetStartDoctypeDeclHandler(c.p, on_doctype);
    int rc = SQLITE_OK;
    if (XML_Parse(c.p, z, n, XML_TRUE) != XML_STATUS_OK) {
        if (c.bDoctype) {
            *pzErr = ram__mprintf("not an XMP sidecar: it has a DOCTYPE (line %lu), which XMP does not allow",
                                  (unsigned long)XML_GetCurrentLineNumber(c.p));
        } else {
            *pzErr = ram__mprintf(
                "not valid XML: line %lu, column %lu: %s", (unsigned long)XML_GetCurrentLineNumber(c.p),
                (unsigned long)XML_GetCurrentColumnNumber(c.p) + 1, XML_ErrorString(XML_GetErrorCode(c.p)));
        }
        rc = *pzErr ? SQLITE_ERROR : SQLITE_NOMEM;
    } else if (!memmem(z, (size_t)n, RDF_NS, sizeof RDF_NS - 1)) {
        *pzErr = ram__mprintf("not an XMP sidecar: no RDF (namespace " RDF_NS ")");
        rc = *pzErr ? SQLITE_ERROR : SQLITE_NOMEM;
    }
    XML_ParserFree(c.p);
    return rc;
}

/* ------------------------------------------------------------------ arrays */

/* The items of array ns:zName (sqlite3_free the array and each item). A
** missing property is an empty list; a property that is not an array is an
** error (the user's data would not survive an append). */
static int read_array(XmpPtr x, const char *ns, const char *zPrefix, const char *zName, char ***pa, int *pn,
                      char **pzErr)
{
    *pa = 0;
    *pn = 0;
    XmpStringPtr s = xmp_string_new();
    if (!s) return SQLITE_NOMEM;
    uint32_t bits = 0;
    int rc = SQLITE_OK;
    if (xmp_get_property(x, ns, zName, s, &bits) && !XMP_IS_PROP_ARRAY(bits)) {
        *pzErr = ram__mprintf("%s:%s is not an array of keywords", zPrefix, zName);
        rc = *pzErr ? SQLITE_ERROR : SQLITE_NOMEM;
        goto done;
    }
    for (int i = 1; xmp_get_array_item(x, ns, zName, i, s, &bits); i++) {
        char **a = sqlite3_realloc64(*pa, sizeof(char *) * (sqlite3_uint64)(*pn + 1));
        if (!a) {
            rc = SQLITE_NOMEM;
            goto done;
        }
        *pa = a;
        if (!(a[*pn] = ram__mprintf("%s", xmp_string_cstr(s)))) {
            rc = SQLITE_NOMEM;
            goto done;
        }
        (*pn)++;
    }
done:
    xmp_string_free(s);
    return rc;
}

static void free_list(char **a, int n)
{
    for (int i = 0; i < n; i++) sqlite3_free(a[i]);
    sqlite3_free(a);
}

static int in_list(char *const *a, int n, const char *z)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(a[i], z)) return 1;
    return 0;
}

/* Removes from ns:zName every item listed in azOld (previous automatic ones);
** the property goes when it ends up empty. */
static int remove_items(XmpPtr x, const char *ns, const char *zPrefix, const char *zName, char *const *azOld, int nOld,
                        char **pzErr)
{
    char **a = 0;
    int n = 0;
    int rc = read_array(x, ns, zPrefix, zName, &a, &n, pzErr);
    if (rc) return rc;
    int nLeft = n;
    for (int i = n; i >= 1; i--) { /* from the end: indices stay valid */
        if (!in_list(azOld, nOld, a[i - 1])) continue;
        char *zPath = ram__mprintf("%s[%d]", zName, i);
        if (!zPath) {
            rc = SQLITE_NOMEM;
            break;
        }
        xmp_delete_property(x, ns, zPath);
        sqlite3_free(zPath);
        nLeft--;
    }
    if (rc == SQLITE_OK && n > 0 && nLeft == 0) xmp_delete_property(x, ns, zName);
    free_list(a, n);
    return rc;
}

/* Appends each of az not already in ns:zName, and lists it in ours:zAuto. */
static int add_items(XmpPtr x, const char *ns, const char *zPrefix, const char *zName, const char *zAuto,
                     char *const *az, int n, char **pzErr)
{
    char **aHave = 0;
    int nHave = 0;
    int rc = read_array(x, ns, zPrefix, zName, &aHave, &nHave, pzErr);
    if (rc) return rc;
    for (int i = 0; i < n; i++) {
        if (in_list(aHave, nHave, az[i]) || in_list(az, i, az[i])) continue;
        if (!xmp_append_array_item(x, ns, zName, XMP_PROP_ARRAY_IS_UNORDERED, az[i], 0) ||
            !xmp_append_array_item(x, RAM_XMP_NS, zAuto, XMP_PROP_ARRAY_IS_UNORDERED, az[i], 0)) {
            *pzErr = ram__mprintf("the XMP toolkit could not add a keyword to %s:%s (exempi error %d)", zPrefix, zName,
                                  xmp_get_error());
            rc = *pzErr ? SQLITE_ERROR : SQLITE_NOMEM;
            break;
        }
    }
    free_list(aHave, nHave);
    return rc;
}

/* ------------------------------------------------------------------ merge */

int ram__xmp_merge(const char *zOld, int nOld, const char *const *azTag, int nTag, const char *zRoot,
                   const char *zModel, char **pzOut, char **pzErr)
{
    XmpPtr x = 0;
    XmpStringPtr s = 0;
    char **azAuto = 0, **azAutoH = 0, **azH = 0;
    int nAuto = 0, nAutoH = 0, nH = 0;
    int rc = SQLITE_OK;
    *pzOut = 0;
    *pzErr = 0;

    pthread_once(&g_once, xmp_global_init);
    if (!g_bInitOk) {
        *pzErr = ram__mprintf("the XMP toolkit (exempi) failed to initialise");
        return *pzErr ? SQLITE_ERROR : SQLITE_NOMEM;
    }
    int bBlank = 1;
    for (int i = 0; i < nOld && bBlank; i++)
        bBlank = zOld[i] == ' ' || zOld[i] == '\t' || zOld[i] == '\n' || zOld[i] == '\r';
    if (!bBlank && (rc = check_xml(zOld, nOld, pzErr)) != SQLITE_OK) return rc;

    x = bBlank ? xmp_new_empty() : xmp_new(zOld, (size_t)nOld);
    if (!x) {
        if (bBlank) return SQLITE_NOMEM;
        *pzErr = ram__mprintf("not an XMP sidecar: the XMP toolkit refused it (exempi error %d)", xmp_get_error());
        return *pzErr ? SQLITE_ERROR : SQLITE_NOMEM;
    }

    /* Hierarchical keywords: ROOT|tag. */
    if (zRoot && zRoot[0] && nTag > 0) {
        azH = sqlite3_malloc64(sizeof(char *) * (sqlite3_uint64)nTag);
        if (!azH) {
            rc = SQLITE_NOMEM;
            goto done;
        }
        for (; nH < nTag; nH++) {
            if (!(azH[nH] = ram__mprintf("%s|%s", zRoot, azTag[nH]))) {
                rc = SQLITE_NOMEM;
                goto done;
            }
        }
    }

    /* Out with the previous run's keywords, in with this one's. */
    if ((rc = read_array(x, RAM_XMP_NS, RAM_XMP_PREFIX, "autoSubject", &azAuto, &nAuto, pzErr)) ||
        (rc = read_array(x, RAM_XMP_NS, RAM_XMP_PREFIX, "autoHierarchicalSubject", &azAutoH, &nAutoH, pzErr)) ||
        (rc = remove_items(x, NS_DC, "dc", "subject", azAuto, nAuto, pzErr)) ||
        (rc = remove_items(x, LR_NS, "lr", "hierarchicalSubject", azAutoH, nAutoH, pzErr)))
        goto done;
    xmp_delete_property(x, RAM_XMP_NS, "autoSubject");
    xmp_delete_property(x, RAM_XMP_NS, "autoHierarchicalSubject");
    xmp_delete_property(x, RAM_XMP_NS, "taggerModel");
    if ((rc = add_items(x, NS_DC, "dc", "subject", "autoSubject", (char *const *)azTag, nTag, pzErr)) ||
        (rc = add_items(x, LR_NS, "lr", "hierarchicalSubject", "autoHierarchicalSubject", azH, nH, pzErr)))
        goto done;
    if (zModel && zModel[0]) xmp_set_property(x, RAM_XMP_NS, "taggerModel", zModel, 0);

    s = xmp_string_new();
    if (!s) {
        rc = SQLITE_NOMEM;
        goto done;
    }
    if (!xmp_serialize(x, s, XMP_SERIAL_OMITPACKETWRAPPER, 0)) {
        *pzErr = ram__mprintf("the XMP toolkit could not write the sidecar (exempi error %d)", xmp_get_error());
        rc = *pzErr ? SQLITE_ERROR : SQLITE_NOMEM;
        goto done;
    }
    *pzOut = ram__mprintf("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n%s", xmp_string_cstr(s));
    if (!*pzOut) rc = SQLITE_NOMEM;

done:
    if (s) xmp_string_free(s);
    xmp_free(x);
    free_list(azAuto, nAuto);
    free_list(azAutoH, nAutoH);
    free_list(azH, nH);
    return rc;
}
