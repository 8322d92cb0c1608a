/*
** convert_config.h — configs for `ram-convert --random`: the named presets
** and CONFIG.json files, turned into a struct ram_model config (no weights).
*/
#ifndef RAM_CONVERT_CONFIG_H
#define RAM_CONVERT_CONFIG_H

#include "model.h"

struct convert_random_cfg {
    struct ram_model cfg; /* config fields only; num_class 0 = from the tag list */
    int official_vocab;   /* 1: the official tag files are the default vocabulary */
    char tags[3][1024];   /* tag files named by CONFIG.json (en, zh, thresholds); "" if none */
};

/* Fills *out from a preset name or a CONFIG.json path (a name ending in
** ".json" or containing '/'). Errors name the bad key. */
ram_status convert_random_config(const char *what, struct convert_random_cfg *out, struct ram_error *err);

/* Name of preset i (0, 1, ...; NULL past the last) and its one-line description. */
const char *convert_preset(int i, const char **help);

#endif /* RAM_CONVERT_CONFIG_H */
