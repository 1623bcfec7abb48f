/*
 * body.h - how a delivery's body is stored (private to src/store): the
 * encodings of the body_encoding column and the codec both backends use.
 *
 *   identity  the raw bytes
 *   lz4       LZ4 block of the raw bytes (body_size is the raw length)
 *   deflate   zlib stream of the raw bytes (body_size is the raw length)
 *   duplicate no bytes: the delivery is a duplicate of the event whose
 *             first delivery (duplicate_of) keeps the body; body_size is
 *             the raw length received. Such a body never decodes: the
 *             delivery is answered and stored skipped, and is not replayed.
 *
 * Bodies under 64 KiB (GitHub's usual 5-30 KB payloads) go through LZ4:
 * ~4.5 us for 10 KB shrunk ~3.4x, so a delivery's row fits its table page
 * instead of spilling into three overflow pages, and the log, the
 * checkpoint and the flush write a third of the bytes. Larger bodies get
 * level-1 deflate (~5x). A body that does not shrink stays raw. Encoding
 * runs on the submitting thread, so request threads share its CPU cost.
 */
#ifndef HL_STORE_BODY_H
#define HL_STORE_BODY_H

#include <stddef.h>
#include <stdint.h>

enum hl_body_encoding {
	HL_BODY_IDENTITY,
	HL_BODY_LZ4,
	HL_BODY_DEFLATE,
	HL_BODY_DUPLICATE,
};

#define HL_BODY_DEFLATE_MIN 65536 /* bytes: from here deflate, below LZ4 */
#define HL_BODY_ENCODE_MIN  512   /* bytes: smaller bodies stay raw */

/* The column's name for enc. */
const char *hl_body_encoding_name(enum hl_body_encoding enc);

/* Encodes n bytes of body: on success *out (malloc'ed, caller frees) holds
 * *out_len bytes and the encoding is returned; HL_BODY_IDENTITY (and *out
 * NULL) when the body is small, does not shrink, or memory ran out. */
enum hl_body_encoding hl_body_encode(const void *body, size_t n, void **out, size_t *out_len);

/* Decodes a stored body of n bytes in encoding enc (the column's text; NULL
 * is identity) whose raw length is size (-1: not recorded) into *out
 * (malloc'ed, NUL-terminated, *out_len bytes). 0, or -1 when the encoding
 * is unknown, the bytes do not decode to exactly size bytes, size is over
 * max, or memory ran out. */
int hl_body_decode(const char *enc, const void *blob, size_t n, int64_t size, size_t max,
                   char **out, size_t *out_len);

#endif
