/*
** bpe.h — the CLIP byte-level BPE tokenizer: text -> the token ids that
** OpenAI CLIP's clip.tokenize(text, truncate=True) produces (without ftfy).
**
**     struct ram_bpe *bpe = 0;
**     if (ram_bpe_init(vocab_text, vocab_len, &bpe, &err)) return fail(err.msg);
**     int32_t ids[RAM_CLIP_CONTEXT]; int n;
**     if (ram_bpe_tokenize(bpe, "a photo of a cat.", 17, ids, RAM_CLIP_CONTEXT, &n, &err)) ...
**     // ids = 49406 320 1125 539 320 2368 269 49407, n = 8 (no zero padding)
**     ram_bpe_free(bpe);
**
** Text handling, step by step (see bpe.c for HOW IT WORKS):
**   - input is UTF-8; invalid sequences become U+FFFD, one per maximal
**     invalid subpart, exactly as Python's bytes.decode('utf-8', 'replace');
**   - html.unescape twice with Python's exact rules: decimal and hex numeric
**     references (with or without ';', Python's fix-ups for invalid numbers),
**     and all 2231 names of Python's html.entities.html5 (the 106 legacy names
**     also without ';', and the longest-legacy-prefix rule: "&notit;" ->
**     "\u00acit;"). One deviation: a decimal reference with more than 4300
**     digits makes Python raise; here it gives U+FFFD like any number
**     > 0x10FFFF;
**   - strip (str.isspace), every run of regex \s -> one space, strip, then
**     Python's full str.lower() (U+0130 -> "i\u0307", final sigma);
**   - CLIP's pre-split pattern with the regex module's semantics, BPE with the
**     merge table, ids as simple_tokenizer numbers them.
** NOT done: ftfy.fix_text (mojibake repair, NFC, curly quotes, fullwidth
** forms, ligatures). Text on which ftfy acts may therefore tokenize
** differently from the official pipeline.
**
** Thread safety: a ram_bpe is immutable after init; any number of threads may
** tokenize with it concurrently.
*/
#ifndef RAM_BPE_H
#define RAM_BPE_H

#include "ram.h"

#include <stddef.h>
#include <stdint.h>

/* Vocabulary constants of CLIP's bpe_simple_vocab_16e6.txt. */
#define RAM_BPE_N_MERGES 48894 /* merge lines used (lines 1..48894) */
#define RAM_BPE_VOCAB 49408    /* 512 byte symbols + merges + 2 specials */
#define RAM_BPE_SOT 49406      /* <|startoftext|> */
#define RAM_BPE_EOT 49407      /* <|endoftext|> */

/* Longest text accepted (bytes); longer gives RAM_ERR_TOO_BIG. */
#define RAM_BPE_MAX_TEXT (1 << 20)
/* Longest vocabulary text accepted (bytes); the official file is 1.4 MB. */
#define RAM_BPE_MAX_VOCAB_TEXT (64 << 20)

struct ram_bpe;

/* Builds a tokenizer from the text of bpe_simple_vocab_16e6.txt (a header
** line, then merges "left right" one per line; only the first
** RAM_BPE_N_MERGES merge lines are used, as CLIP does). vocab_text is only
** read during the call (not NUL-terminated; len bytes). Fails with
** RAM_ERR_FORMAT on a malformed table (fewer merges, a line that is not two
** symbols, or a merge that uses a symbol only a later merge creates). On
** success *out is owned by the caller (ram_bpe_free). */
ram_status ram_bpe_init(const char *vocab_text, size_t len, struct ram_bpe **out, struct ram_error *err);

/* Frees the tokenizer; NULL is a no-op. */
void ram_bpe_free(struct ram_bpe *bpe);

/* clip.tokenize(text, truncate=True) without the zero padding: ids receives
** 49406, the BPE ids, 49407; when that is longer than max_ids, the first
** max_ids are kept and the last is set to 49407 (the official context is
** max_ids = RAM_CLIP_CONTEXT = 77). text is len bytes of UTF-8 (need not be
** NUL-terminated; may be NULL when len is 0). ids is the caller's buffer of
** max_ids (>= 2) entries; *n_ids receives how many were written.
** Errors: RAM_ERR_ARG (max_ids < 2, NULL pointers), RAM_ERR_TOO_BIG (len >
** RAM_BPE_MAX_TEXT), RAM_ERR_NOMEM. */
ram_status ram_bpe_tokenize(const struct ram_bpe *bpe, const char *text, size_t len, int32_t *ids, int max_ids,
                            int *n_ids, struct ram_error *err);

/* SimpleTokenizer.encode(text): the BPE ids alone (no 49406/49407), not
** truncated. ids is the caller's buffer of max_ids entries; if the text has
** more tokens than that, returns RAM_ERR_TOO_BIG with the first max_ids
** written and *n_ids = max_ids. Other errors as ram_bpe_tokenize. */
ram_status ram_bpe_encode(const struct ram_bpe *bpe, const char *text, size_t len, int32_t *ids, int max_ids,
                          int *n_ids, struct ram_error *err);

/* bytes.decode('utf-8', 'replace') into code points: one U+FFFD per maximal
** invalid subpart. out has room for n code points; returns how many were
** written. Shared with the BERT tokenizer (wordpiece.c). */
size_t ram_utf8_decode(const unsigned char *s, size_t n, uint32_t *out);

#endif /* RAM_BPE_H */
