/*
 * body.c - the stored body's codec (see body.h): LZ4 for usual payloads,
 * level-1 deflate for large ones, raw when neither pays.
 */
#include "body.h"

#include <lz4.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

const char *
hl_body_encoding_name(enum hl_body_encoding enc)
{
	switch (enc) {
	case HL_BODY_LZ4:
		return "lz4";
	case HL_BODY_DEFLATE:
		return "deflate";
	case HL_BODY_DUPLICATE:
		return "duplicate";
	case HL_BODY_IDENTITY:
		break;
	}
	return "identity";
}

/*
 * Each thread keeps one deflate stream (~270 KiB of state) and resets it
 * per body: creating one per call costs more than the compression, as the
 * state is mmap'ed and page-faulted every time.
 */
static pthread_key_t body_zkey;
static pthread_once_t body_zonce = PTHREAD_ONCE_INIT;

static void
body_zfree(void *p)
{
	deflateEnd(p);
	free(p);
}

static void
body_zinit(void)
{
	pthread_key_create(&body_zkey, body_zfree);
}

static z_stream *
body_zstream(void)
{
	z_stream *zs;

	pthread_once(&body_zonce, body_zinit);
	zs = pthread_getspecific(body_zkey);
	if (zs)
		return deflateReset(zs) == Z_OK ? zs : NULL;
	zs = calloc(1, sizeof(*zs));
	if (!zs)
		return NULL;
	if (deflateInit2(zs, 1, Z_DEFLATED, 15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
		free(zs);
		return NULL;
	}
	if (pthread_setspecific(body_zkey, zs) != 0) {
		body_zfree(zs);
		return NULL;
	}
	return zs;
}

static size_t
body_deflate(const void *body, size_t n, void *z, size_t cap)
{
	z_stream *zs = body_zstream();

	if (!zs)
		return 0;
	zs->next_in = (Bytef *)body;
	zs->avail_in = (uInt)n;
	zs->next_out = z;
	zs->avail_out = (uInt)cap;
	if (deflate(zs, Z_FINISH) != Z_STREAM_END)
		return 0;
	return zs->total_out;
}

enum hl_body_encoding
hl_body_encode(const void *body, size_t n, void **out, size_t *out_len)
{
	enum hl_body_encoding enc;
	size_t cap, got;
	void *z;

	*out = NULL;
	*out_len = 0;
	if (n < HL_BODY_ENCODE_MIN || n > (size_t)LZ4_MAX_INPUT_SIZE)
		return HL_BODY_IDENTITY;
	enc = n < HL_BODY_DEFLATE_MIN ? HL_BODY_LZ4 : HL_BODY_DEFLATE;
	/* worth storing only if it saves at least an eighth */
	cap = n - n / 8;
	z = malloc(cap);
	if (!z)
		return HL_BODY_IDENTITY;
	if (enc == HL_BODY_LZ4) {
		int k = LZ4_compress_default(body, z, (int)n, (int)cap);

		got = k > 0 ? (size_t)k : 0;
	} else {
		got = body_deflate(body, n, z, cap);
	}
	if (got == 0) {
		free(z);
		return HL_BODY_IDENTITY;
	}
	*out = z;
	*out_len = got;
	return enc;
}

int
hl_body_decode(const char *enc, const void *blob, size_t n, int64_t size, size_t max, char **out,
               size_t *out_len)
{
	char *b;

	*out = NULL;
	*out_len = 0;
	if (!enc || strcmp(enc, "identity") == 0) {
		/* a raw body is its recorded size (a row cut short is corrupt) */
		if (size >= 0 && (uint64_t)size != (uint64_t)n)
			return -1;
		b = malloc(n + 1);
		if (!b)
			return -1;
		if (n)
			memcpy(b, blob, n);
		b[n] = '\0';
		*out = b;
		*out_len = n;
		return 0;
	}
	if (size < 0 || (uint64_t)size > (uint64_t)max || (n && !blob))
		return -1;
	b = malloc((size_t)size + 1);
	if (!b)
		return -1;
	if (strcmp(enc, "lz4") == 0) {
		if (size > LZ4_MAX_INPUT_SIZE || n > (size_t)INT32_MAX ||
		    LZ4_decompress_safe(blob, b, (int)n, (int)size) != (int)size)
			goto bad;
	} else if (strcmp(enc, "deflate") == 0) {
		uLongf got = (uLongf)size;

		if (uncompress((Bytef *)b, &got, blob, (uLong)n) != Z_OK || got != (uLongf)size)
			goto bad;
	} else {
		goto bad;
	}
	b[size] = '\0';
	*out = b;
	*out_len = (size_t)size;
	return 0;
bad:
	free(b);
	return -1;
}
