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

/* Every place of the search order, in order, without duplicates: absolute
** paths of candidate files (".../sqlite-ram/default.ram", the last one
** ".../models/default.ram"), whether they exist or not; *pn receives the
** count. NULL (and *pn 0) when out of memory. Free with
** ram__model_places_free. For callers that need the folders themselves
** (e.g. a list of trusted model folders): the dirname of each entry. */
char **ram__model_places(int *pn);
void ram__model_places_free(char **az, int n);

/* The same for another file name in the same folders: the default caption
** model is RAM_CAPTION_MODEL_FILE (conn.c). Ownership as above. */
#define RAM_CAPTION_MODEL_FILE "default_caption.ram"
char *ram__model_search_of(const char *zFile, char **pzTried);
char **ram__model_places_of(const char *zFile, int *pn);

#endif
