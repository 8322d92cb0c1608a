/*
** rht.h — the randomized Hadamard rotation T = H D / sqrt(n) of the token
** cache's layout 2 (the definition is in cache_score.h: H the Sylvester
** Hadamard matrix, D the fixed signs of ram_rht_sign). T is orthonormal:
** ram_rht_inverse undoes ram_rht_forward up to float rounding.
*/
#ifndef RAM_RHT_H
#define RAM_RHT_H

/* The sign of channel d in D (+1 or -1): part of the stored layout, never to change. */
float ram_rht_sign(int d);

/* x (n floats, n a power of two) <- T x in place. */
void ram_rht_forward(float *x, int n);

/* x <- T^T x in place (the inverse). */
void ram_rht_inverse(float *x, int n);

/* rows vectors of n floats in place: T x each (forward != 0), or T^T x. */
void ram_rht_rows(float *x, int rows, int n, int forward);

#endif /* RAM_RHT_H */
