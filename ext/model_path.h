/*
** model_path.h — the default model's search order (model_path.c).
*/
#ifndef RAM_MODEL_PATH_H
#define RAM_MODEL_PATH_H

/* The first readable default model file of the search order (model_path.c's
** header comment), or NULL when there is none (sqlite3_free). When pzTried is
** not NULL, *pzTried receives every place looked at, in order, ", "-separated
** (sqlite3_free; NULL when out of memory). RAM_MODEL is the caller's business:
** it is not one of the places. */
char *ram__model_search(char **pzTried);

#endif
