/*
** model_file.h — what the files of our model file format share, private to
** core/: the format's identity strings (models/README.md), the vocabulary
** size limit, and the descriptor helpers that keep a FIFO or device from
** blocking an open. Used by model.c (life cycle), model_load.c (reading our
** file), model_vocab.c (tag lists), model_pth.c (.pth, converter only) and
** model_write.c (writing, converter only).
*/
#ifndef RAM_MODEL_FILE_H
#define RAM_MODEL_FILE_H

#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>

#define RAM_FORMAT_NAME "sqlite-ram"
#define RAM_FORMAT_VERSION "1"
/* Version 2 = version 1 + int8 Swin matrices (metadata quant = "int8"):
** a version-1 reader rejects these files rather than misreading I8. */
#define RAM_FORMAT_VERSION_Q8 "2"
/* Version 3 = version 2 + the rounding residual of each int8 Swin matrix of
** a block (NAME.qlo, NAME.qlo.qscale; the accurate int8 mix): a version-2
** reader refuses the version instead of running without the residuals. */
#define RAM_FORMAT_VERSION_Q8ACC "3"
#define RAM_MAX_VOCAB_TEXT ((size_t)64 << 20)

/* O_NONBLOCK: opening a FIFO (or a device) for reading would otherwise
** block forever, uninterruptibly, before the caller can see it is not a
** regular file. */
static inline int ram_open_nonblock(const char *path) { return open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); }

/* Back to blocking reads once fstat said regular file (O_NONBLOCK changes
** nothing for regular files; cleared so read() means what it says).
** Returns nonzero on failure. */
static inline int ram_fd_blocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0;
}

/* The file's mtime in nanoseconds: rewriting a file in place changes it. */
static inline int64_t ram_mtime_ns(const struct stat *sb)
{
    return (int64_t)sb->st_mtim.tv_sec * 1000000000 + sb->st_mtim.tv_nsec;
}

#endif /* RAM_MODEL_FILE_H */
