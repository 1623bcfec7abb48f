/*
 * clean.c - log cleaning: the copy loops that move a line's bytes into the
 * scan buffer up to the next '\n' or escape (SSE2, and AVX2 when the CPU has
 * it), one line cleaned on its own (for evidence lines read back from the
 * raw log), and evidence text made safe (valid UTF-8, no control bytes).
 *
 * What a line loses (GitHub Actions timestamps, ANSI escapes,
 * ##[group]/##[endgroup] markers, BuildKit "#N 1.234 " progress prefixes and
 * the CI systems' "exited with code N" boilerplate except 137 and 143) is
 * decided by the per-line primitives in classify_int.h, inline there because
 * the scanner calls them for every line. Cleaning never adds or removes a
 * '\n'.
 */
#include "classify/classify_int.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

static int
cl_copy_until_special(char *dst, size_t *o, size_t lim, const char *src, size_t *i, size_t n)
{
	size_t ii = *i, oo = *o;
#if defined(__SSE2__)
	const __m128i vnl = _mm_set1_epi8('\n'), vesc = _mm_set1_epi8(0x1b);
	while (ii + 16 <= n && oo < lim) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(src + ii));
		int m = _mm_movemask_epi8(
		        _mm_or_si128(_mm_cmpeq_epi8(v, vnl), _mm_cmpeq_epi8(v, vesc)));
		_mm_storeu_si128((__m128i *)(void *)(dst + oo), v);
		if (m != 0) {
			unsigned k = (unsigned)__builtin_ctz((unsigned)m);
			ii += k;
			oo += k;
			if (oo > lim) {
				ii -= oo - lim;
				oo = lim;
				break;
			}
			*i = ii;
			*o = oo;
			return (unsigned char)src[ii];
		}
		ii += 16;
		oo += 16;
	}
	if (oo > lim) {
		ii -= oo - lim;
		oo = lim;
	}
#endif
	while (ii < n && oo < lim) {
		char ch = src[ii];
		if (ch == '\n' || ch == 0x1b) {
			*i = ii;
			*o = oo;
			return (unsigned char)ch;
		}
		dst[oo++] = ch;
		ii++;
	}
	*i = ii;
	*o = oo;
	return 0;
}

#if defined(__x86_64__) && defined(__GNUC__)
/* The same with 32-byte AVX2 vectors, used when the CPU has AVX2. */
__attribute__((target("avx2"))) static int
cl_copy_until_special_avx2(char *dst, size_t *o, size_t lim, const char *src, size_t *i, size_t n)
{
	size_t ii = *i, oo = *o;
	const __m256i vnl = _mm256_set1_epi8('\n'), vesc = _mm256_set1_epi8(0x1b);

	while (ii + 32 <= n && oo < lim) {
		__m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(src + ii));
		unsigned m = (unsigned)_mm256_movemask_epi8(
		        _mm256_or_si256(_mm256_cmpeq_epi8(v, vnl), _mm256_cmpeq_epi8(v, vesc)));
		_mm256_storeu_si256((__m256i *)(void *)(dst + oo), v);
		if (m != 0) {
			unsigned k = (unsigned)__builtin_ctz(m);
			ii += k;
			oo += k;
			if (oo > lim) {
				ii -= oo - lim;
				oo = lim;
				break;
			}
			*i = ii;
			*o = oo;
			return (unsigned char)src[ii];
		}
		ii += 32;
		oo += 32;
	}
	if (oo > lim) {
		ii -= oo - lim;
		oo = lim;
	}
	*i = ii;
	*o = oo;
	/* the SSE code after it must not meet the upper halves in use */
	_mm256_zeroupper();
	return cl_copy_until_special(dst, o, lim, src, i, n);
}

int (*cl_copy_fn)(char *, size_t *, size_t, const char *, size_t *, size_t) = cl_copy_until_special;
bool cl_have_avx2;
static pthread_once_t cl_copy_once = PTHREAD_ONCE_INIT;

static void
cl_copy_pick(void)
{
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx2")) {
		cl_copy_fn = cl_copy_until_special_avx2;
		cl_have_avx2 = true;
	}
}

void
cl_clean_init(void)
{
	pthread_once(&cl_copy_once, cl_copy_pick);
}
#else
int (*cl_copy_fn)(char *, size_t *, size_t, const char *, size_t *, size_t) = cl_copy_until_special;
bool cl_have_avx2;

void
cl_clean_init(void)
{
}
#endif

/* Cleans one line (without its '\n') into dst, at most max bytes: no
 * timestamp, escape sequences, group markers or boilerplate. */
size_t
cl_clean_line_into(char *dst, size_t max, const char *src, size_t n)
{
	size_t i = cl_timestamp_len(src, n), o = 0;

	while (i < n && o < max) {
		const char *esc = memchr(src + i, 0x1b, n - i);
		size_t stop = esc ? (size_t)(esc - src) : n;
		size_t len = stop - i;
		if (len > max - o)
			len = max - o;
		memcpy(dst + o, src + i, len);
		o += len;
		i = stop;
		if (esc != NULL)
			i += cl_escape_len(src + i, n - i);
	}
	return cl_clean_line(dst, o);
}

/* Copies a line as valid UTF-8 without control characters, trimmed and
 * clipped to CL_MAX_LINE_TEXT bytes. */
char *
cl_line_text(const char *p, size_t n)
{
	char *out;
	size_t o = 0, i = 0;

	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	out = malloc(CL_MAX_LINE_TEXT + 8);
	if (out == NULL)
		return NULL;
	while (i < n && o < CL_MAX_LINE_TEXT) {
		unsigned char ch = (unsigned char)p[i];
		size_t len = 0;
		if (ch < 0x80) {
			out[o++] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
			i++;
			continue;
		}
		if (ch >= 0xc2 && ch <= 0xdf)
			len = 2;
		else if (ch >= 0xe0 && ch <= 0xef)
			len = 3;
		else if (ch >= 0xf0 && ch <= 0xf4)
			len = 4;
		bool ok = len > 0 && i + len <= n;
		for (size_t k = 1; ok && k < len; k++)
			ok = ((unsigned char)p[i + k] & 0xc0) == 0x80;
		if (ok && len == 3) {
			unsigned char c1 = (unsigned char)p[i + 1];
			ok = !(ch == 0xe0 && c1 < 0xa0) && !(ch == 0xed && c1 >= 0xa0);
		}
		if (ok && len == 4) {
			unsigned char c1 = (unsigned char)p[i + 1];
			ok = !(ch == 0xf0 && c1 < 0x90) && !(ch == 0xf4 && c1 >= 0x90);
		}
		if (!ok) {
			out[o++] = '?';
			i++;
			continue;
		}
		memcpy(out + o, p + i, len);
		o += len;
		i += len;
	}
	out[o] = '\0';
	return out;
}
