/*
** test_fuzz_corpus.c — replays every file of tests/fuzz/corpus/<target>/
** through the same entry points the libFuzzer targets use (the files
** tests/fuzz/fuzz_<target>.c are #included here under distinct names), so seeds and regression inputs found
** by `make fuzz` are rerun by `make test` (normal and ASan builds) without
** clang's fuzzer. One PASS line per target: a crash, sanitizer report or
** abort() in a target fails the whole binary (run.sh reports its status).
** A regression input is added by copying it into the target's corpus folder.
*/
#define FUZZ_NAME fuzz_image_one
#include "fuzz/fuzz_image.c"
#undef FUZZ_NAME
#define FUZZ_NAME fuzz_pth_one
#include "fuzz/fuzz_pth.c"
#undef FUZZ_NAME
#define FUZZ_NAME fuzz_model_one
#include "fuzz/fuzz_model.c"
#undef FUZZ_NAME
#define FUZZ_NAME fuzz_bpe_one
#include "fuzz/fuzz_bpe.c"
#undef FUZZ_NAME
#define FUZZ_NAME fuzz_sql_one
#include "fuzz/fuzz_sql.c"
#undef FUZZ_NAME
#define FUZZ_NAME fuzz_index_one
#include "fuzz/fuzz_index.c"
#undef FUZZ_NAME
#define FUZZ_NAME fuzz_wordpiece_one
#include "fuzz/fuzz_wordpiece.c"
#undef FUZZ_NAME

#include "harness.h"
#include <dirent.h>

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Runs fn over every regular file of tests/fuzz/corpus/name, in name order;
** returns how many were run (-1: no such folder). */
static int replay(const char *name, int (*fn)(const uint8_t *, size_t))
{
    char dir[512];
    snprintf(dir, sizeof dir, "tests/fuzz/corpus/%s", name);
    DIR *d = opendir(dir);
    if (!d) return -1;
    char **names = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            names = realloc(names, sizeof *names * (size_t)cap);
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    for (int i = 0; i < n; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        size_t len = 0;
        void *buf = read_file(path, &len);
        if (!buf) {
            printf("cannot read %s\n", path);
            continue;
        }
        fprintf(stderr, "%s\n", path); /* the last line names the culprit on a crash */
        /* Exact-size copy: read_file may over-allocate (the redzone must be right after). */
        uint8_t *copy = malloc(len ? len : 1);
        memcpy(copy, buf, len);
        free(buf);
        fn(copy, len);
        free(copy);
        free(names[i]);
    }
    free(names);
    return n;
}

int main(void)
{
    static const struct {
        const char *name;
        int (*fn)(const uint8_t *, size_t);
    } t[] = {
        {"image", fuzz_image_one}, {"pth", fuzz_pth_one},     {"model", fuzz_model_one},         {"bpe", fuzz_bpe_one},
        {"sql", fuzz_sql_one},     {"index", fuzz_index_one}, {"wordpiece", fuzz_wordpiece_one},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char cname[64];
        snprintf(cname, sizeof cname, "fuzz_corpus_%s", t[i].name);
        int n = replay(t[i].name, t[i].fn);
        check(n > 0, cname, "no corpus files in tests/fuzz/corpus/%s", t[i].name);
        if (n > 0) printf("  %d inputs replayed\n", n);
    }
    fuzz_sql_close();
    fuzz_index_close();
    (void)data_path;
    (void)check_close_npy;
    ram_bpe_free(fuzz_bpe_vocab);
    ram_wordpiece_free(fuzz_wp_vocab);
    return harness_exit();
}
