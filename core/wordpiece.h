/*
** wordpiece.h — the BERT tokenizer of Tag2Text: text -> the ids the slow
** Hugging Face BertTokenizer('bert-base-uncased') gives after Tag2Text's
** init_tokenizer added [DEC] and [ENC], and ids -> text as its decode() does.
**
**     struct ram_wordpiece *wp = 0;
**     if (ram_wordpiece_init(vocab_txt, vocab_len, &wp, &err)) return fail(err.msg);
**     int32_t ids[64]; int n;
**     ram_wordpiece_tokenize(wp, "A dog!", 6, ids, 64, &n, &err);  // 1037 3899 999
**     char *s = 0;
**     ram_wordpiece_decode(wp, ids, n, 1, 1, &s, &err);             // "a dog!"
**     ram_free(s);
**     ram_wordpiece_free(wp);
**
** What is reproduced (see wordpiece.c for HOW IT WORKS): the special tokens
** [DEC] [UNK] [SEP] [PAD] [CLS] [MASK] [ENC] found in the raw text first
** (exact, case-sensitive) and never split; lower-casing one character at a
** time (as the reference's regex does: so a final capital sigma becomes σ,
** not ς); BasicTokenizer's cleaning (NUL, U+FFFD and category C* dropped,
** whitespace and Zs to spaces), spaces around CJK ideographs, splitting on
** str.isspace(), accent stripping (NFD, Mn removed), a token per punctuation
** character; WordPiece greedy longest match with '##' continuations, [UNK]
** for a word of more than 100 characters or with no match. Character data:
** Python 3.11's unicodedata (Unicode 14.0), core/wordpiece_tables.h.
** Known deviation: NFD's canonical reordering of combining marks is not done;
** it only matters for marks of non-zero combining class that are not Mn
** (a handful of Mc characters), which accent stripping keeps.
**
** Thread safety: a ram_wordpiece is immutable after init.
*/
#ifndef RAM_WORDPIECE_H
#define RAM_WORDPIECE_H

#include "ram.h"

#include <stddef.h>
#include <stdint.h>

/* Longest text accepted (bytes); longer gives RAM_ERR_TOO_BIG. */
#define RAM_WP_MAX_TEXT (1 << 20)
/* Longest vocabulary text accepted (bytes); bert-base-uncased's is 226 KB. */
#define RAM_WP_MAX_VOCAB_TEXT (16 << 20)

struct ram_wordpiece;

/* Builds a tokenizer from the text of vocab.txt: one token per line (id =
** line number, a final newline ends the last line; only '\n' is stripped,
** as the reference's rstrip("\n")); a token listed twice maps to its last
** id. [DEC] and [ENC] are added after the vocabulary (ids n_vocab and
** n_vocab + 1, 30522 and 30523 for bert-base-uncased). [PAD] [UNK] [CLS]
** [SEP] [MASK] must be in the vocabulary (RAM_ERR_FORMAT otherwise).
** vocab_text is only read during the call. *out is owned by the caller
** (ram_wordpiece_free, which is ram_free: the tokenizer is one allocation). */
ram_status ram_wordpiece_init(const char *vocab_text, size_t len, struct ram_wordpiece **out, struct ram_error *err);
void ram_wordpiece_free(struct ram_wordpiece *wp);

/* Special ids. */
enum ram_wp_special { RAM_WP_PAD, RAM_WP_UNK, RAM_WP_CLS, RAM_WP_SEP, RAM_WP_MASK, RAM_WP_DEC, RAM_WP_ENC };
int32_t ram_wordpiece_special(const struct ram_wordpiece *wp, enum ram_wp_special which);

/* Ids in all: vocabulary lines + the 2 added tokens (30524). */
int ram_wordpiece_size(const struct ram_wordpiece *wp);

/* The string of id (borrowed, NUL-terminated, valid while wp lives); the
** [UNK] string for an id out of range, as convert_ids_to_tokens. */
const char *ram_wordpiece_token(const struct ram_wordpiece *wp, int32_t id);

/* tokenizer.tokenize(text) as ids, without [CLS]/[SEP]: the first max_ids
** go to ids (caller's buffer; may be NULL when max_ids is 0) and *n_ids
** receives the total count, which may be larger (call again with more
** room). text: len bytes of UTF-8 (invalid bytes read as U+FFFD, which the
** cleaning drops). Errors: RAM_ERR_ARG, RAM_ERR_TOO_BIG (len >
** RAM_WP_MAX_TEXT), RAM_ERR_NOMEM. */
ram_status ram_wordpiece_tokenize(const struct ram_wordpiece *wp, const char *text, size_t len, int32_t *ids,
                                  int max_ids, int *n_ids, struct ram_error *err);

/* tokenizer(text, padding='max_length', truncation=True, max_length=n)
** with its first id replaced by first_id (Tag2Text's tag encoder: n = 40,
** first_id = [ENC]): ids receives first_id, at most n - 2 token ids, [SEP],
** then [PAD] up to n; mask 1 up to [SEP], 0 after (mask may be NULL);
** *n_used (may be NULL) receives the count of ids with mask 1. n >= 2. */
ram_status ram_wordpiece_encode_fixed(const struct ram_wordpiece *wp, const char *text, size_t len, int32_t first_id,
                                      int n, int32_t *ids, int32_t *mask, int *n_used, struct ram_error *err);

/* tokenizer.decode(ids, skip_special_tokens, clean_up_tokenization_spaces):
** special ids dropped when skip_special; [DEC]/[ENC] kept as pieces of their
** own; pieces joined with ' ', " ##" removed; then, with clean_up,
** clean_up_tokenization (" ." -> ".", " n't" -> "n't", ...). *out receives
** a NUL-terminated string owned by the caller (ram_free). */
ram_status ram_wordpiece_decode(const struct ram_wordpiece *wp, const int32_t *ids, int n, int skip_special,
                                int clean_up, char **out, struct ram_error *err);

#endif /* RAM_WORDPIECE_H */
