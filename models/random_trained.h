/*
** random_trained.h — `ram-convert --random ... --trained-like`: random
** weights that behave like a trained model's where the precision of the
** fast paths shows (see random_trained.c), generated in memory.
*/
#ifndef RAM_RANDOM_TRAINED_H
#define RAM_RANDOM_TRAINED_H

#include "model.h"

/* Fills every weight of m (config and vocabulary set) with trained-like
** random values from seed; the buffers are owned by m (ram_model_free).
** Then ram_model_write (not random) writes them like a converted model. */
ram_status convert_trained_like(struct ram_model *m, uint64_t seed, struct ram_error *err);

#endif /* RAM_RANDOM_TRAINED_H */
