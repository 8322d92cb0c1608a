/*
** unpickle.c — the data-only pickle VM described in unpickle.h: a loop over
** opcodes with a value stack, a mark stack and a memo, building inert values
** in an arena. No opcode imports, looks up or calls anything.
**
** HOW IT WORKS. Values live in a chunked bump arena whose total size is
** capped (RAM_PICKLE_MAX_OBJECTS values, and a byte budget of 64 MiB plus 64
** bytes per pickle byte, at most 1 GiB, which a valid pickle never approaches: each opcode
** creates at most one value). Growing containers double their item array
** inside the arena, so waste stays within a factor of two. As in CPython,
** MARK opens a new frame: opcodes may only pop values above the innermost
** mark. Dict items are appended without de-duplication (lookups elsewhere
** take the last match), which keeps SETITEM O(1) and the VM linear-time.
** Text-protocol opcodes (protocol 0/1 INT, STRING, GET, PUT...), extension
** codes, text persistent ids and out-of-band buffers are refused: torch.save
** never writes them.
*/
#include "unpickle.h"

#include <string.h>

#define ARENA_BLOCK ((size_t)64 << 10)

struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    max_align_t data[]; /* cap bytes */
};

struct ram_pickle {
    struct arena_block *blocks; /* owned chain, freed by ram_pickle_free */
    size_t budget;              /* bytes the arena may still take */
    size_t nobjects;
    int oom; /* an arena allocation failed for lack of memory, not budget */
    const struct ram_pk *root;
};

/* The VM's working state; its arrays are ram_malloc'd and freed on exit. */
struct vm {
    struct ram_pickle *pk;
    const uint8_t *buf;
    size_t len, pos, op_pos;
    struct ram_pk **stack; /* owned */
    size_t sp, stack_cap;
    size_t *marks; /* owned */
    size_t nmarks;
    struct ram_pk **memo; /* owned; NULL slots are unset */
    size_t memo_cap, memo_count;
    struct ram_error *err;
};

static void *arena_alloc(struct ram_pickle *pk, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n > pk->budget) return NULL;
    struct arena_block *b = pk->blocks;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > ARENA_BLOCK ? n : ARENA_BLOCK;
        b = ram_malloc(sizeof *b + cap);
        if (!b) {
            pk->oom = 1;
            return NULL;
        }
        b->cap = cap;
        b->used = 0;
        b->next = pk->blocks;
        pk->blocks = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    pk->budget -= n;
    return p;
}

void ram_pickle_free(struct ram_pickle *pk)
{
    if (!pk) return;
    struct arena_block *b = pk->blocks;
    while (b) {
        struct arena_block *next = b->next;
        ram_free(b);
        b = next;
    }
    ram_free(pk);
}

const struct ram_pk *ram_pickle_root(const struct ram_pickle *pk) { return pk->root; }

static ram_status vm_fail(struct vm *vm, const char *what)
{
    return ram_fail(vm->err, RAM_ERR_FORMAT, "pickle: %s at offset %zu", what, vm->op_pos);
}

static ram_status vm_budget_fail(struct vm *vm)
{
    if (vm->pk->oom) return ram_fail(vm->err, RAM_ERR_NOMEM, "pickle: out of memory");
    return ram_fail(vm->err, RAM_ERR_FORMAT, "pickle: over the memory budget at offset %zu", vm->op_pos);
}

static struct ram_pk *new_value(struct vm *vm, enum ram_pk_type t)
{
    if (vm->pk->nobjects >= RAM_PICKLE_MAX_OBJECTS) return NULL;
    struct ram_pk *v = arena_alloc(vm->pk, sizeof *v);
    if (!v) return NULL;
    memset(v, 0, sizeof *v);
    v->type = t;
    vm->pk->nobjects++;
    return v;
}

/* Appends item to a container's item array, doubling it in the arena. */
static int seq_push(struct vm *vm, struct ram_pk *c, struct ram_pk *item)
{
    if (c->u.seq.n == c->u.seq.cap) {
        size_t cap = c->u.seq.cap ? c->u.seq.cap * 2 : 8, bytes;
        if (!ram_mul_ok(cap, sizeof(struct ram_pk *), &bytes)) return 0;
        struct ram_pk **items = arena_alloc(vm->pk, bytes);
        if (!items) return 0;
        if (c->u.seq.n) memcpy(items, c->u.seq.items, c->u.seq.n * sizeof *items);
        c->u.seq.items = items;
        c->u.seq.cap = cap;
    }
    c->u.seq.items[c->u.seq.n++] = item;
    return 1;
}

/* ---------------------------------------------------------------- stack */

static size_t floor_of(const struct vm *vm) { return vm->nmarks ? vm->marks[vm->nmarks - 1] : 0; }

static ram_status push(struct vm *vm, struct ram_pk *v)
{
    if (!v) return vm_budget_fail(vm);
    if (vm->sp == vm->stack_cap) {
        if (vm->stack_cap >= RAM_PICKLE_MAX_STACK) return vm_fail(vm, "stack too deep");
        size_t cap = vm->stack_cap ? vm->stack_cap * 2 : 256;
        struct ram_pk **s = ram_realloc(vm->stack, cap * sizeof *s);
        if (!s) return ram_fail(vm->err, RAM_ERR_NOMEM, "pickle: out of memory");
        vm->stack = s;
        vm->stack_cap = cap;
    }
    vm->stack[vm->sp++] = v;
    return RAM_OK;
}

/* Pops one value above the innermost mark, or NULL if there is none. */
static struct ram_pk *pop(struct vm *vm)
{
    if (vm->sp <= floor_of(vm)) return NULL;
    return vm->stack[--vm->sp];
}

static struct ram_pk *top(struct vm *vm)
{
    if (vm->sp <= floor_of(vm)) return NULL;
    return vm->stack[vm->sp - 1];
}

/* Removes the innermost mark; *first is the index of the first value above it. */
static int pop_mark(struct vm *vm, size_t *first)
{
    if (!vm->nmarks) return 0;
    *first = vm->marks[--vm->nmarks];
    return 1;
}

/* A tuple made of the n values stack[from..from+n). */
static struct ram_pk *make_tuple(struct vm *vm, size_t from, size_t n)
{
    struct ram_pk *t = new_value(vm, RAM_PK_TUPLE);
    if (!t) return NULL;
    if (n) {
        t->u.seq.items = arena_alloc(vm->pk, n * sizeof(struct ram_pk *));
        if (!t->u.seq.items) return NULL;
        memcpy(t->u.seq.items, vm->stack + from, n * sizeof(struct ram_pk *));
    }
    t->u.seq.n = t->u.seq.cap = n;
    return t;
}

/* ---------------------------------------------------------------- input */

static int need(struct vm *vm, size_t n) { return n <= vm->len - vm->pos; }

static uint64_t rd_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* Reads an n-byte little-endian length; fails if the string would overrun. */
static int read_len(struct vm *vm, int nbytes, size_t *out)
{
    if (!need(vm, (size_t)nbytes)) return 0;
    uint64_t n = rd_le(vm->buf + vm->pos, nbytes);
    vm->pos += (size_t)nbytes;
    if (n > RAM_PICKLE_MAX_STRING || n > vm->len - vm->pos) return 0;
    *out = (size_t)n;
    return 1;
}

/* A newline-terminated text argument (GLOBAL, INST), at most 4096 bytes. */
static int read_line(struct vm *vm, const char **p, size_t *n)
{
    size_t max = vm->len - vm->pos < 4097 ? vm->len - vm->pos : 4097;
    const uint8_t *nl = memchr(vm->buf + vm->pos, '\n', max);
    if (!nl) return 0;
    *p = (const char *)vm->buf + vm->pos;
    *n = (size_t)(nl - (vm->buf + vm->pos));
    vm->pos += *n + 1;
    return 1;
}

/* ---------------------------------------------------------------- values */

static int eq(const char *p, size_t n, const char *s) { return strlen(s) == n && !memcmp(p, s, n); }

static struct ram_pk *make_global(struct vm *vm, const char *mod, size_t nmod, const char *name, size_t nname)
{
    static const struct {
        const char *name;
        int dtype;
    } storages[] = {
        {"FloatStorage", RAM_DTYPE_F32},
        {"HalfStorage", RAM_DTYPE_F16},
        {"BFloat16Storage", RAM_DTYPE_BF16},
        {"LongStorage", RAM_DTYPE_I64},
        {"IntStorage", RAM_DTYPE_I32},
        {"ByteStorage", RAM_DTYPE_U8},
        {"DoubleStorage", -1},
        {"ShortStorage", -1},
        {"CharStorage", -1},
        {"BoolStorage", -1},
    };
    struct ram_pk *g = new_value(vm, RAM_PK_GLOBAL);
    if (!g) return NULL;
    g->u.g.mod = mod;
    g->u.g.nmod = nmod;
    g->u.g.name = name;
    g->u.g.nname = nname;
    g->u.g.kind = RAM_PKG_OTHER;
    g->u.g.storage_dtype = -1;
    if (eq(mod, nmod, "collections") && eq(name, nname, "OrderedDict")) {
        g->u.g.kind = RAM_PKG_ORDERED_DICT;
    } else if (eq(mod, nmod, "torch._utils")) {
        if (eq(name, nname, "_rebuild_tensor_v2"))
            g->u.g.kind = RAM_PKG_REBUILD_TENSOR_V2;
        else if (eq(name, nname, "_rebuild_parameter") || eq(name, nname, "_rebuild_parameter_with_state"))
            g->u.g.kind = RAM_PKG_REBUILD_PARAMETER;
    } else if (eq(mod, nmod, "torch")) {
        for (size_t i = 0; i < sizeof storages / sizeof storages[0]; i++) {
            if (eq(name, nname, storages[i].name)) {
                g->u.g.kind = RAM_PKG_STORAGE;
                g->u.g.storage_dtype = storages[i].dtype;
            }
        }
    }
    return g;
}

const struct ram_pk *ram_pk_origin(const struct ram_pk *v)
{
    if (!v) return NULL;
    if (v->type == RAM_PK_GLOBAL) return v;
    if (v->type == RAM_PK_OBJECT) return v->u.cls;
    return NULL;
}

int ram_pk_str_eq(const struct ram_pk *v, const char *s)
{
    return v && v->type == RAM_PK_STR && eq(v->u.s.p, v->u.s.n, s);
}

const char *ram_pk_type_name(const struct ram_pk *v)
{
    static const char *names[] = {
        [RAM_PK_NONE] = "None",     [RAM_PK_BOOL] = "bool",     [RAM_PK_INT] = "int",
        [RAM_PK_BIGINT] = "int",    [RAM_PK_FLOAT] = "float",   [RAM_PK_STR] = "str",
        [RAM_PK_BYTES] = "bytes",   [RAM_PK_TUPLE] = "tuple",   [RAM_PK_LIST] = "list",
        [RAM_PK_DICT] = "dict",     [RAM_PK_SET] = "set",       [RAM_PK_GLOBAL] = "global",
        [RAM_PK_OBJECT] = "object", [RAM_PK_TENSOR] = "tensor", [RAM_PK_STORAGE] = "storage",
    };
    if (!v || (unsigned)v->type >= sizeof names / sizeof names[0]) return "?";
    return names[v->type];
}

/* What calling or instantiating callable(args) gives in this inert world. */
static struct ram_pk *call(struct vm *vm, struct ram_pk *callable, struct ram_pk *args)
{
    if (callable->type == RAM_PK_GLOBAL) {
        switch (callable->u.g.kind) {
        case RAM_PKG_ORDERED_DICT: return new_value(vm, RAM_PK_DICT);
        case RAM_PKG_REBUILD_TENSOR_V2: {
            struct ram_pk *t = new_value(vm, RAM_PK_TENSOR);
            if (t) t->u.args = args;
            return t;
        }
        case RAM_PKG_REBUILD_PARAMETER:
            if (args && args->type == RAM_PK_TUPLE && args->u.seq.n >= 1 && args->u.seq.items[0]->type == RAM_PK_TENSOR)
                return args->u.seq.items[0];
            break;
        default: break;
        }
    }
    struct ram_pk *o = new_value(vm, RAM_PK_OBJECT);
    if (o) o->u.cls = ram_pk_origin(callable);
    return o;
}

/* ---------------------------------------------------------------- the VM */

static ram_status memo_put(struct vm *vm, size_t idx)
{
    struct ram_pk *v = top(vm);
    if (!v) return vm_fail(vm, "memo put on an empty stack");
    if (idx >= RAM_PICKLE_MAX_MEMO || idx > vm->len) return vm_fail(vm, "memo index too large");
    if (idx >= vm->memo_cap) {
        size_t cap = vm->memo_cap ? vm->memo_cap : 256;
        while (cap <= idx) cap *= 2;
        size_t bytes = cap * sizeof *vm->memo;
        if (bytes - vm->memo_cap * sizeof *vm->memo > vm->pk->budget) return vm_budget_fail(vm);
        struct ram_pk **m = ram_realloc(vm->memo, bytes);
        if (!m) return ram_fail(vm->err, RAM_ERR_NOMEM, "pickle: out of memory");
        memset(m + vm->memo_cap, 0, (cap - vm->memo_cap) * sizeof *m);
        vm->pk->budget -= bytes - vm->memo_cap * sizeof *vm->memo;
        vm->memo = m;
        vm->memo_cap = cap;
    }
    if (!vm->memo[idx]) vm->memo_count++;
    vm->memo[idx] = v;
    return RAM_OK;
}

static ram_status memo_get(struct vm *vm, size_t idx)
{
    if (idx >= vm->memo_cap || !vm->memo[idx]) return vm_fail(vm, "memo get of an unset index");
    return push(vm, vm->memo[idx]);
}

/* Items above the innermost mark go into container c (list, set or dict):
** pairs for a dict. Inert objects swallow them. */
static ram_status add_marked(struct vm *vm, struct ram_pk *c, int pairs, size_t first)
{
    size_t n = vm->sp - first;
    if (pairs && (n & 1)) return vm_fail(vm, "odd number of dict items");
    if (c->type == RAM_PK_OBJECT) {
        vm->sp = first;
        return RAM_OK;
    }
    if (pairs ? c->type != RAM_PK_DICT : (c->type != RAM_PK_LIST && c->type != RAM_PK_SET))
        return vm_fail(vm, "items added to a value of the wrong type");
    for (size_t i = first; i < vm->sp; i++)
        if (!seq_push(vm, c, vm->stack[i])) return vm_budget_fail(vm);
    vm->sp = first;
    return RAM_OK;
}

static ram_status run(struct vm *vm)
{
    ram_status rc;
    struct ram_pk *a, *b, *c, *v;
    size_t n, first;
    const char *s1, *s2;
    size_t n1, n2;

    while (vm->pos < vm->len) {
        vm->op_pos = vm->pos;
        uint8_t op = vm->buf[vm->pos++];
        switch (op) {
        case 0x80: /* PROTO */
            if (!need(vm, 1)) return vm_fail(vm, "truncated PROTO");
            if (vm->buf[vm->pos++] > 5) return vm_fail(vm, "unsupported pickle protocol");
            break;
        case 0x95: /* FRAME: a length prefix for the opcodes that follow */
            if (!need(vm, 8)) return vm_fail(vm, "truncated FRAME");
            if (rd_le(vm->buf + vm->pos, 8) > vm->len - vm->pos - 8) return vm_fail(vm, "FRAME overruns the pickle");
            vm->pos += 8;
            break;
        case '.': /* STOP */
            if (vm->nmarks) return vm_fail(vm, "STOP inside a MARK");
            if (!(v = pop(vm))) return vm_fail(vm, "STOP on an empty stack");
            vm->pk->root = v;
            return RAM_OK;
        case '(': /* MARK */
            if (vm->nmarks >= RAM_PICKLE_MAX_MARKS) return vm_fail(vm, "MARKs nested too deeply");
            vm->marks[vm->nmarks++] = vm->sp;
            break;
        case '0': /* POP: a value, or the mark itself when the frame is empty */
            if (!pop(vm) && !pop_mark(vm, &first)) return vm_fail(vm, "POP on an empty stack");
            break;
        case '1': /* POP_MARK */
            if (!pop_mark(vm, &first)) return vm_fail(vm, "POP_MARK without MARK");
            vm->sp = first;
            break;
        case '2': /* DUP */
            if (!(v = top(vm))) return vm_fail(vm, "DUP on an empty stack");
            if ((rc = push(vm, v))) return rc;
            break;
        case 'N': /* NONE */
            if ((rc = push(vm, new_value(vm, RAM_PK_NONE)))) return rc;
            break;
        case 0x88: /* NEWTRUE */
        case 0x89: /* NEWFALSE */
            if (!(v = new_value(vm, RAM_PK_BOOL))) return vm_budget_fail(vm);
            v->u.i = op == 0x88;
            if ((rc = push(vm, v))) return rc;
            break;
        case 'K': /* BININT1 */
        case 'M': /* BININT2 */
        case 'J': /* BININT */
            n = op == 'K' ? 1 : op == 'M' ? 2 : 4;
            if (!need(vm, n)) return vm_fail(vm, "truncated integer");
            if (!(v = new_value(vm, RAM_PK_INT))) return vm_budget_fail(vm);
            v->u.i = (int64_t)rd_le(vm->buf + vm->pos, (int)n);
            if (op == 'J') v->u.i = (int32_t)(uint32_t)v->u.i;
            vm->pos += n;
            if ((rc = push(vm, v))) return rc;
            break;
        case 0x8a: /* LONG1 */
        case 0x8b: /* LONG4: two's complement little-endian of n bytes */
            if (op == 0x8a) {
                if (!need(vm, 1)) return vm_fail(vm, "truncated LONG1");
                n = vm->buf[vm->pos++];
                if (!need(vm, n)) return vm_fail(vm, "truncated LONG1");
            } else if (!read_len(vm, 4, &n)) {
                return vm_fail(vm, "bad LONG4 length");
            }
            if (!(v = new_value(vm, n <= 8 ? RAM_PK_INT : RAM_PK_BIGINT))) return vm_budget_fail(vm);
            if (n > 0 && n <= 8) {
                uint64_t u = rd_le(vm->buf + vm->pos, (int)n);
                if (n < 8 && (vm->buf[vm->pos + n - 1] & 0x80)) u |= ~(uint64_t)0 << (8 * n);
                v->u.i = (int64_t)u;
            }
            vm->pos += n;
            if ((rc = push(vm, v))) return rc;
            break;
        case 'G': /* BINFLOAT: big-endian IEEE double */
            if (!need(vm, 8)) return vm_fail(vm, "truncated BINFLOAT");
            if (!(v = new_value(vm, RAM_PK_FLOAT))) return vm_budget_fail(vm);
            {
                uint64_t u = 0;
                for (int i = 0; i < 8; i++) u = (u << 8) | vm->buf[vm->pos + (size_t)i];
                memcpy(&v->u.f, &u, 8);
            }
            vm->pos += 8;
            if ((rc = push(vm, v))) return rc;
            break;
        case 'X':  /* BINUNICODE */
        case 0x8c: /* SHORT_BINUNICODE */
        case 0x8d: /* BINUNICODE8 */
        case 'T':  /* BINSTRING (a py2 str, read as text) */
        case 'U':  /* SHORT_BINSTRING */
        case 'B':  /* BINBYTES */
        case 'C':  /* SHORT_BINBYTES */
        case 0x8e: /* BINBYTES8 */
        case 0x96: /* BYTEARRAY8 */ {
            int w = (op == 0x8c || op == 'U' || op == 'C') ? 1 : (op == 0x8d || op == 0x8e || op == 0x96) ? 8 : 4;
            if (op == 'T' && need(vm, 4) && (vm->buf[vm->pos + 3] & 0x80)) return vm_fail(vm, "negative string length");
            if (!read_len(vm, w, &n)) return vm_fail(vm, "string length overruns the pickle");
            int text = op == 'X' || op == 0x8c || op == 0x8d || op == 'T' || op == 'U';
            if (!(v = new_value(vm, text ? RAM_PK_STR : RAM_PK_BYTES))) return vm_budget_fail(vm);
            v->u.s.p = (const char *)vm->buf + vm->pos;
            v->u.s.n = n;
            vm->pos += n;
            if ((rc = push(vm, v))) return rc;
            break;
        }
        case ')': /* EMPTY_TUPLE */
            if ((rc = push(vm, make_tuple(vm, 0, 0)))) return rc;
            break;
        case 't': /* TUPLE */
            if (!pop_mark(vm, &first)) return vm_fail(vm, "TUPLE without MARK");
            v = make_tuple(vm, first, vm->sp - first);
            vm->sp = first;
            if ((rc = push(vm, v))) return rc;
            break;
        case 0x85: /* TUPLE1 */
        case 0x86: /* TUPLE2 */
        case 0x87: /* TUPLE3 */
            n = (size_t)(op - 0x84);
            if (vm->sp - floor_of(vm) < n) return vm_fail(vm, "TUPLEn on a short stack");
            v = make_tuple(vm, vm->sp - n, n);
            vm->sp -= n;
            if ((rc = push(vm, v))) return rc;
            break;
        case ']': /* EMPTY_LIST */
            if ((rc = push(vm, new_value(vm, RAM_PK_LIST)))) return rc;
            break;
        case '}': /* EMPTY_DICT */
            if ((rc = push(vm, new_value(vm, RAM_PK_DICT)))) return rc;
            break;
        case 0x8f: /* EMPTY_SET */
            if ((rc = push(vm, new_value(vm, RAM_PK_SET)))) return rc;
            break;
        case 'l':  /* LIST */
        case 'd':  /* DICT */
        case 0x91: /* FROZENSET */
            if (!pop_mark(vm, &first)) return vm_fail(vm, "LIST/DICT/FROZENSET without MARK");
            if (!(v = new_value(vm, op == 'l' ? RAM_PK_LIST : op == 'd' ? RAM_PK_DICT : RAM_PK_SET)))
                return vm_budget_fail(vm);
            if ((rc = add_marked(vm, v, op == 'd', first))) return rc;
            if ((rc = push(vm, v))) return rc;
            break;
        case 'a': /* APPEND */
            if (!(a = pop(vm)) || !(c = top(vm))) return vm_fail(vm, "APPEND on a short stack");
            if (c->type == RAM_PK_LIST) {
                if (!seq_push(vm, c, a)) return vm_budget_fail(vm);
            } else if (c->type != RAM_PK_OBJECT) {
                return vm_fail(vm, "APPEND to a non-list");
            }
            break;
        case 's': /* SETITEM */
            if (!(b = pop(vm)) || !(a = pop(vm)) || !(c = top(vm))) return vm_fail(vm, "SETITEM on a short stack");
            if (c->type == RAM_PK_DICT) {
                if (!seq_push(vm, c, a) || !seq_push(vm, c, b)) return vm_budget_fail(vm);
            } else if (c->type != RAM_PK_OBJECT) {
                return vm_fail(vm, "SETITEM on a non-dict");
            }
            break;
        case 'e':  /* APPENDS */
        case 'u':  /* SETITEMS */
        case 0x90: /* ADDITEMS */
            if (!pop_mark(vm, &first)) return vm_fail(vm, "APPENDS/SETITEMS/ADDITEMS without MARK");
            if (first <= floor_of(vm)) return vm_fail(vm, "APPENDS/SETITEMS/ADDITEMS without a target");
            c = vm->stack[first - 1];
            if (op == 0x90 && c->type == RAM_PK_LIST) return vm_fail(vm, "ADDITEMS on a list");
            if (op == 'e' && c->type == RAM_PK_SET) return vm_fail(vm, "APPENDS on a set");
            if ((rc = add_marked(vm, c, op == 'u', first))) return rc;
            break;
        case 'c': /* GLOBAL "module\nname\n" */
            if (!read_line(vm, &s1, &n1) || !read_line(vm, &s2, &n2)) return vm_fail(vm, "bad GLOBAL");
            if ((rc = push(vm, make_global(vm, s1, n1, s2, n2)))) return rc;
            break;
        case 0x93: /* STACK_GLOBAL */
            if (!(b = pop(vm)) || !(a = pop(vm))) return vm_fail(vm, "STACK_GLOBAL on a short stack");
            if (a->type != RAM_PK_STR || b->type != RAM_PK_STR) return vm_fail(vm, "STACK_GLOBAL of non-strings");
            if ((rc = push(vm, make_global(vm, a->u.s.p, a->u.s.n, b->u.s.p, b->u.s.n)))) return rc;
            break;
        case 'R': /* REDUCE */
            if (!(b = pop(vm)) || !(a = pop(vm))) return vm_fail(vm, "REDUCE on a short stack");
            if ((rc = push(vm, call(vm, a, b)))) return rc;
            break;
        case 0x81: /* NEWOBJ: cls, args */
            if (!(b = pop(vm)) || !(a = pop(vm))) return vm_fail(vm, "NEWOBJ on a short stack");
            if ((rc = push(vm, call(vm, a, NULL)))) return rc;
            break;
        case 0x92: /* NEWOBJ_EX: cls, args, kwargs */
            if (!pop(vm) || !pop(vm) || !(a = pop(vm))) return vm_fail(vm, "NEWOBJ_EX on a short stack");
            if ((rc = push(vm, call(vm, a, NULL)))) return rc;
            break;
        case 'o': /* OBJ: MARK cls args... */
            if (!pop_mark(vm, &first) || first == vm->sp) return vm_fail(vm, "bad OBJ");
            a = vm->stack[first];
            vm->sp = first;
            if ((rc = push(vm, call(vm, a, NULL)))) return rc;
            break;
        case 'i': /* INST "module\nname\n": MARK args... */
            if (!read_line(vm, &s1, &n1) || !read_line(vm, &s2, &n2)) return vm_fail(vm, "bad INST");
            if (!pop_mark(vm, &first)) return vm_fail(vm, "INST without MARK");
            vm->sp = first;
            if (!(a = make_global(vm, s1, n1, s2, n2))) return vm_budget_fail(vm);
            if ((rc = push(vm, call(vm, a, NULL)))) return rc;
            break;
        case 'b': /* BUILD: the state is dropped, the object stays */
            if (!pop(vm) || !top(vm)) return vm_fail(vm, "BUILD on a short stack");
            break;
        case 'Q': /* BINPERSID */
            if (!(a = pop(vm))) return vm_fail(vm, "BINPERSID on an empty stack");
            if (!(v = new_value(vm, RAM_PK_STORAGE))) return vm_budget_fail(vm);
            v->u.pid = a;
            if ((rc = push(vm, v))) return rc;
            break;
        case 'q': /* BINPUT */
        case 'r': /* LONG_BINPUT */
        case 'h': /* BINGET */
        case 'j': /* LONG_BINGET */
            n = (op == 'q' || op == 'h') ? 1 : 4;
            if (!need(vm, n)) return vm_fail(vm, "truncated memo index");
            first = (size_t)rd_le(vm->buf + vm->pos, (int)n);
            vm->pos += n;
            if ((rc = (op == 'q' || op == 'r') ? memo_put(vm, first) : memo_get(vm, first))) return rc;
            break;
        case 0x94: /* MEMOIZE */
            if ((rc = memo_put(vm, vm->memo_count))) return rc;
            break;
        default: return vm_fail(vm, "unsupported opcode");
        }
    }
    return ram_fail(vm->err, RAM_ERR_FORMAT, "pickle: truncated (no STOP opcode)");
}

ram_status ram_unpickle(const void *buf, size_t len, struct ram_pickle **out, struct ram_error *err)
{
    struct vm vm;
    ram_status rc;
    *out = 0;
    if (len > RAM_PICKLE_MAX_LEN) return ram_fail(err, RAM_ERR_FORMAT, "pickle: %zu bytes is over the limit", len);
    memset(&vm, 0, sizeof vm);
    vm.buf = buf;
    vm.len = len;
    vm.err = err;
    vm.pk = ram_calloc(1, sizeof *vm.pk);
    vm.marks = ram_malloc(RAM_PICKLE_MAX_MARKS * sizeof *vm.marks);
    if (!vm.pk || !vm.marks) {
        rc = ram_fail(err, RAM_ERR_NOMEM, "pickle: out of memory");
        goto cleanup;
    }
    vm.pk->budget = ((size_t)64 << 20) + (len < ((size_t)1 << 24) ? len * 64 : ((size_t)1 << 30));
    if (vm.pk->budget > ((size_t)1 << 30)) vm.pk->budget = (size_t)1 << 30;
    rc = run(&vm);
    if (rc == RAM_OK) {
        *out = vm.pk;
        vm.pk = 0;
    }
cleanup:
    ram_pickle_free(vm.pk);
    ram_free(vm.stack);
    ram_free(vm.marks);
    ram_free(vm.memo);
    return rc;
}
