/*
** unpickle.h — a data-only pickle VM for the data.pkl of PyTorch
** checkpoints (protocols 2 to 5). It never imports, looks up or calls
** anything: it builds an inert tree of values that the .pth reader inspects.
**
** Usage:
**
**     struct ram_pickle *pk = 0;
**     if (ram_unpickle(bytes, n, &pk, &err)) return ...;
**     const struct ram_pk *root = ram_pickle_root(pk);
**     ... walk root (RAM_PK_DICT items are key, value, key, value ...) ...
**     ram_pickle_free(pk);
**
** What the values mean:
**   - GLOBAL / STACK_GLOBAL push a RAM_PK_GLOBAL placeholder carrying
**     (module, name) and a classification (enum ram_pk_global).
**   - REDUCE / NEWOBJ / NEWOBJ_EX / OBJ / INST on a callable give:
**       collections.OrderedDict            -> an empty RAM_PK_DICT
**       torch._utils._rebuild_tensor_v2    -> RAM_PK_TENSOR (args kept, unchecked)
**       torch._utils._rebuild_parameter(*) -> its first argument if a tensor
**       anything else                      -> RAM_PK_OBJECT (inert; keeps the global)
**   - BUILD keeps the object and drops the state (this is how the state
**     dict's _metadata attribute arrives); APPEND/SETITEM/ADDITEMS on an
**     inert object drop their items.
**   - BINPERSID wraps the persistent id in RAM_PK_STORAGE (unchecked).
** Strings point into the caller's buffer (not NUL-terminated): the buffer
** must outlive the ram_pickle.
**
** Limits (hostile input fails with RAM_ERR_FORMAT, never crashes, never
** hangs): every opcode consumes input, so time is linear in the pickle; the
** stack, the mark stack, the memo index and the number of objects are
** capped, and all allocations come from one arena with a byte budget
** proportional to the pickle length. Nothing here recurses over values.
*/
#ifndef RAM_UNPICKLE_H
#define RAM_UNPICKLE_H

#include "internal.h"

#define RAM_PICKLE_MAX_LEN ((size_t)1 << 30)    /* data.pkl bytes */
#define RAM_PICKLE_MAX_STACK (1 << 20)          /* values on the stack */
#define RAM_PICKLE_MAX_MARKS 4096               /* nested MARKs */
#define RAM_PICKLE_MAX_MEMO (1 << 24)           /* memo indices */
#define RAM_PICKLE_MAX_OBJECTS (1 << 24)        /* values created */
#define RAM_PICKLE_MAX_STRING ((size_t)1 << 30) /* bytes of one string */

enum ram_pk_type {
    RAM_PK_NONE,
    RAM_PK_BOOL,
    RAM_PK_INT,    /* fits int64 */
    RAM_PK_BIGINT, /* an integer wider than 64 bits (value not kept) */
    RAM_PK_FLOAT,
    RAM_PK_STR,
    RAM_PK_BYTES,
    RAM_PK_TUPLE,
    RAM_PK_LIST,
    RAM_PK_DICT, /* items[2k] = key, items[2k+1] = value, insertion order, duplicates kept */
    RAM_PK_SET,
    RAM_PK_GLOBAL,
    RAM_PK_OBJECT, /* inert result of calling or instantiating a global */
    RAM_PK_TENSOR, /* _rebuild_tensor_v2(*args) */
    RAM_PK_STORAGE /* persistent_load(pid) */
};

enum ram_pk_global {
    RAM_PKG_OTHER = 0,
    RAM_PKG_ORDERED_DICT,
    RAM_PKG_REBUILD_TENSOR_V2,
    RAM_PKG_REBUILD_PARAMETER,
    RAM_PKG_STORAGE /* torch.<X>Storage: see storage_dtype */
};

struct ram_pk {
    enum ram_pk_type type;
    union {
        int64_t i; /* BOOL, INT */
        double f;  /* FLOAT */
        struct {   /* STR, BYTES: borrowed from the pickle buffer */
            const char *p;
            size_t n;
        } s;
        struct { /* TUPLE, LIST, DICT, SET: arena-owned array */
            struct ram_pk **items;
            size_t n, cap;
        } seq;
        struct { /* GLOBAL: module and name borrowed from the buffer */
            const char *mod, *name;
            size_t nmod, nname;
            enum ram_pk_global kind;
            int storage_dtype; /* enum ram_dtype for RAM_PKG_STORAGE, -1 if unsupported */
        } g;
        const struct ram_pk *cls;  /* OBJECT: the callable or class (a GLOBAL, or another OBJECT) */
        const struct ram_pk *args; /* TENSOR: the argument tuple */
        const struct ram_pk *pid;  /* STORAGE: the persistent id */
    } u;
};

struct ram_pickle;

/* Runs the pickle in buf[0..len). buf is borrowed and must outlive *out. On
** success *out owns every value (free with ram_pickle_free). */
ram_status ram_unpickle(const void *buf, size_t len, struct ram_pickle **out, struct ram_error *err);

/* The value STOP returned. Borrowed; valid until ram_pickle_free. */
const struct ram_pk *ram_pickle_root(const struct ram_pickle *pk);

void ram_pickle_free(struct ram_pickle *pk);

/* The GLOBAL that built v (itself for a GLOBAL, the class chain followed for
** an OBJECT), or NULL. */
const struct ram_pk *ram_pk_origin(const struct ram_pk *v);

/* 1 if v is a STR equal to the NUL-terminated s. */
int ram_pk_str_eq(const struct ram_pk *v, const char *s);

/* Python-ish name of v's type for messages ("int", "str", "tensor", ...). */
const char *ram_pk_type_name(const struct ram_pk *v);

#endif /* RAM_UNPICKLE_H */
