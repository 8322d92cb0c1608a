/*
** func_thresholds.c — the SQL functions that edit a connection's tag
** thresholds (the sources live in thresholds.c; precedence and the
** main.ram_thresholds table are described there and in docs/SQL.md):
**
**     SELECT ram_set_threshold('cat', 0.5);   -- this connection only
**     SELECT ram_set_threshold('cat', NULL);  -- remove that override
**     SELECT ram_reset_thresholds();          -- remove all; returns how many
*/
#include "ext.h"
SQLITE_EXTENSION_INIT3

/* ram_set_threshold(tag, value): overrides the threshold of an English tag
** name for this connection; value NULL removes the override. Returns value. */
static void ramSetThresholdFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    struct ram_thresh_src *p = &((struct ram_conn *)sqlite3_user_data(ctx))->th;
    if (sqlite3_value_type(argv[0]) != SQLITE_TEXT) {
        sqlite3_result_error(ctx, "ram_set_threshold(): argument 1 must be a TEXT tag name", -1);
        return;
    }
    const char *zTag = (const char *)sqlite3_value_text(argv[0]);
    int nTag = sqlite3_value_bytes(argv[0]);
    if (!zTag) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    int t = sqlite3_value_type(argv[1]);
    if (t == SQLITE_NULL) {
        ram__thresh_override(p, zTag, nTag, 0, 0);
        sqlite3_result_null(ctx);
        return;
    }
    double r = sqlite3_value_double(argv[1]);
    if ((t != SQLITE_INTEGER && t != SQLITE_FLOAT) || !(r >= 0.0 && r <= 1.0)) {
        sqlite3_result_error(ctx, "ram_set_threshold(): argument 2 must be a number in [0, 1] (or NULL)", -1);
        return;
    }
    if (ram__thresh_override(p, zTag, nTag, 1, r)) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    sqlite3_result_double(ctx, r);
}

/* ram_reset_thresholds(): removes every ram_set_threshold() override of the
** connection; returns how many there were. */
static void ramResetThresholdsFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    struct ram_conn *p = sqlite3_user_data(ctx);
    sqlite3_result_int(ctx, ram__thresh_reset(&p->th));
}

/* Flags: both change the connection's state, so neither is deterministic;
** DIRECTONLY so that a view or trigger of an untrusted database cannot
** silently change what the application's queries select. */
static const struct ram_func_def g_aFunc[] = {
    {"ram_set_threshold", 2, SQLITE_UTF8 | SQLITE_DIRECTONLY, ramSetThresholdFunc},
    {"ram_reset_thresholds", 0, SQLITE_UTF8 | SQLITE_DIRECTONLY, ramResetThresholdsFunc},
};

int ram__register_threshold_funcs(sqlite3 *db, struct ram_conn *p, char **pzErrMsg)
{
    return ram__register_funcs(db, p, g_aFunc, (int)(sizeof g_aFunc / sizeof g_aFunc[0]), pzErrMsg);
}
