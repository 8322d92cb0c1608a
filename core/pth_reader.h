/*
** pth_reader.h — opens a PyTorch .pth checkpoint (the zip format of
** torch.save since 1.6) without Python and exposes its state dict as a table
** of named, contiguous, little-endian tensor views.
**
** Usage:
**
**     struct ram_pth *p = 0;
**     if (ram_pth_open("ram_plus_swin_large_14m.pth", &p, &err)) return ...;
**     const struct ram_tensor_view *t = ram_pth_find(p, "label_embed");
**     for (int i = 0; i < ram_pth_count(p); i++) puts(ram_pth_tensor(p, i)->name);
**     ram_pth_close(p);
**
** Which dict is the state dict: if the top-level object is a dict with a key
** 'model' (else 'state_dict') whose value is a dict, that dict; otherwise the
** top-level dict itself (a bare torch.save(state_dict)). Every value of the
** chosen dict must be a tensor: anything else (for instance an object built
** by some global) is an error naming the key and the global. Whatever sits
** elsewhere ('optimizer', 'config', 'epoch', ...) is parsed as inert data and
** ignored. The pickle is never executed (see unpickle.h).
**
** Tensors: storages torch.FloatStorage (F32), HalfStorage (F16),
** BFloat16Storage (BF16), LongStorage (I64), IntStorage (I32), ByteStorage
** (U8); Double/Short/Char/Bool storages are refused with an error. Views
** point into the mapped file when the tensor is contiguous and its data
** aligned to its element size; otherwise (transposed or expanded views,
** unaligned data) the reader keeps a contiguous copy it owns. Expanded
** views larger than their storage are refused. Keys that share one storage
** (tied weights) give views on the same bytes. Byte order must be little
** endian (a 'byteorder' entry saying "big" is refused).
**
** Thread safety: an opened ram_pth is immutable; lookups may run from any
** number of threads.
*/
#ifndef RAM_PTH_READER_H
#define RAM_PTH_READER_H

#include "internal.h"

struct ram_pth;

/* Maps path read-only and parses it. On success *out owns the mapping and the
** tensor table (free with ram_pth_close). */
ram_status ram_pth_open(const char *path, struct ram_pth **out, struct ram_error *err);

/* Same over a buffer in memory. buf is borrowed and must outlive *out. */
ram_status ram_pth_open_memory(const void *buf, size_t len, struct ram_pth **out, struct ram_error *err);

/* Unmaps and frees everything; views become invalid. NULL is a no-op. */
void ram_pth_close(struct ram_pth *p);

/* Number of tensors in the state dict. */
int ram_pth_count(const struct ram_pth *p);

/* Tensor i (0 <= i < count) in state-dict order, or NULL. Borrowed; valid
** until ram_pth_close. */
const struct ram_tensor_view *ram_pth_tensor(const struct ram_pth *p, int i);

/* Tensor named name, or NULL. Borrowed; valid until ram_pth_close. */
const struct ram_tensor_view *ram_pth_find(const struct ram_pth *p, const char *name);

/* A ram_tensor_source whose find() is ram_pth_find on p (borrowed: valid
** while p is open). */
struct ram_tensor_source ram_pth_source(struct ram_pth *p);

#endif /* RAM_PTH_READER_H */
