/* Bounds-checked byte reader and writer; see buf.h. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "util.h"

void
buf_init(struct buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max == 0 ? BUF_MAX_DEFAULT : max;
}

void
buf_init_secure(struct buf *b, size_t max)
{
	buf_init(b, max);
	b->secure = 1;
}

void
buf_init_reader(struct buf *b, const void *data, size_t len)
{
	memset(b, 0, sizeof(*b));
	/* The cast is safe: readonly buffers are never written through data. */
	b->data = (uint8_t *)(uintptr_t)data;
	b->size = len;
	b->alloc = len;
	b->max = len;
	b->readonly = 1;
}

void
buf_free(struct buf *b)
{
	if (!b->readonly && b->data != NULL) {
		if (b->secure)
			sotto_wipe(b->data, b->alloc);
		free(b->data);
	}
	b->data = NULL;
	b->size = b->off = b->alloc = 0;
}

void
buf_reset(struct buf *b)
{
	if (!b->readonly && b->secure && b->data != NULL)
		sotto_wipe(b->data, b->alloc);
	if (b->readonly) {
		b->off = b->size;
		return;
	}
	b->size = b->off = 0;
}

size_t
buf_len(const struct buf *b)
{
	return b->size - b->off;
}

const uint8_t *
buf_ptr(const struct buf *b)
{
	if (b->data == NULL)
		return (const uint8_t *)"";
	return b->data + b->off;
}

/* Make room for len more bytes, compacting consumed bytes before growing. */
static int
buf_grow(struct buf *b, size_t len)
{
	uint8_t *n;
	size_t need, nalloc;

	if (b->readonly)
		return SOTTO_ERR_INVALID;
	if (len > b->max || b->size - b->off > b->max - len)
		return SOTTO_ERR_RANGE;
	if (b->off > 0 && b->size + len > b->alloc) {
		memmove(b->data, b->data + b->off, b->size - b->off);
		b->size -= b->off;
		if (b->secure)
			sotto_wipe(b->data + b->size, b->off);
		b->off = 0;
	}
	need = b->size + len;
	if (need <= b->alloc)
		return 0;
	nalloc = b->alloc < 256 ? 256 : b->alloc;
	while (nalloc < need)
		nalloc = nalloc > b->max / 2 ? b->max : nalloc * 2;
	if (nalloc > b->max)
		nalloc = b->max;
	if (b->secure) {
		/* realloc could leave a copy of the secret behind: copy and wipe. */
		n = malloc(nalloc);
		if (n == NULL)
			return SOTTO_ERR_NOMEM;
		if (b->data != NULL) {
			memcpy(n, b->data, b->size);
			sotto_wipe(b->data, b->alloc);
			free(b->data);
		}
	} else {
		n = realloc(b->data, nalloc);
		if (n == NULL)
			return SOTTO_ERR_NOMEM;
	}
	b->data = n;
	b->alloc = nalloc;
	return 0;
}

int
buf_reserve(struct buf *b, size_t len, uint8_t **out)
{
	int r;

	*out = NULL;
	if ((r = buf_grow(b, len)) != 0)
		return r;
	*out = b->data + b->size;
	b->size += len;
	return 0;
}

int
buf_put(struct buf *b, const void *data, size_t len)
{
	uint8_t *p;
	int r;

	if ((r = buf_reserve(b, len, &p)) != 0)
		return r;
	if (len > 0)
		memcpy(p, data, len);
	return 0;
}

int
buf_put_u8(struct buf *b, uint8_t v)
{
	return buf_put(b, &v, 1);
}

int
buf_put_u16(struct buf *b, uint16_t v)
{
	uint8_t d[2] = {(uint8_t)(v >> 8), (uint8_t)v};

	return buf_put(b, d, sizeof(d));
}

int
buf_put_u32(struct buf *b, uint32_t v)
{
	uint8_t d[4];

	d[0] = (uint8_t)(v >> 24);
	d[1] = (uint8_t)(v >> 16);
	d[2] = (uint8_t)(v >> 8);
	d[3] = (uint8_t)v;
	return buf_put(b, d, sizeof(d));
}

int
buf_put_u64(struct buf *b, uint64_t v)
{
	uint8_t d[8];
	int i;

	for (i = 7; i >= 0; i--) {
		d[i] = (uint8_t)v;
		v >>= 8;
	}
	return buf_put(b, d, sizeof(d));
}

int
buf_put_string(struct buf *b, const void *data, size_t len)
{
	uint8_t *p;
	int r;

	if (len > UINT32_MAX)
		return SOTTO_ERR_RANGE;
	if ((r = buf_reserve(b, 4 + len, &p)) != 0)
		return r;
	p[0] = (uint8_t)(len >> 24);
	p[1] = (uint8_t)(len >> 16);
	p[2] = (uint8_t)(len >> 8);
	p[3] = (uint8_t)len;
	if (len > 0)
		memcpy(p + 4, data, len);
	return 0;
}

int
buf_put_cstring(struct buf *b, const char *s)
{
	return buf_put_string(b, s, strlen(s));
}

int
buf_get(struct buf *b, void *out, size_t len)
{
	if (buf_len(b) < len)
		return SOTTO_ERR_SHORT;
	if (len > 0)
		memcpy(out, b->data + b->off, len);
	b->off += len;
	return 0;
}

int
buf_skip(struct buf *b, size_t len)
{
	if (buf_len(b) < len)
		return SOTTO_ERR_SHORT;
	b->off += len;
	return 0;
}

int
buf_get_u8(struct buf *b, uint8_t *v)
{
	return buf_get(b, v, 1);
}

int
buf_get_u16(struct buf *b, uint16_t *v)
{
	uint8_t d[2];
	int r;

	if ((r = buf_get(b, d, sizeof(d))) != 0)
		return r;
	*v = (uint16_t)((d[0] << 8) | d[1]);
	return 0;
}

int
buf_get_u32(struct buf *b, uint32_t *v)
{
	uint8_t d[4];
	int r;

	if ((r = buf_get(b, d, sizeof(d))) != 0)
		return r;
	*v = ((uint32_t)d[0] << 24) | ((uint32_t)d[1] << 16) | ((uint32_t)d[2] << 8) | d[3];
	return 0;
}

int
buf_get_u64(struct buf *b, uint64_t *v)
{
	uint8_t d[8];
	uint64_t x = 0;
	int i, r;

	if ((r = buf_get(b, d, sizeof(d))) != 0)
		return r;
	for (i = 0; i < 8; i++)
		x = (x << 8) | d[i];
	*v = x;
	return 0;
}

int
buf_get_string_direct(struct buf *b, const uint8_t **data, size_t *len, size_t maxlen)
{
	const uint8_t *p;
	uint32_t n;

	*data = NULL;
	*len = 0;
	if (buf_len(b) < 4)
		return SOTTO_ERR_SHORT;
	p = b->data + b->off;
	n = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
	if (n > maxlen)
		return SOTTO_ERR_RANGE;
	if (buf_len(b) - 4 < n)
		return SOTTO_ERR_SHORT;
	*data = p + 4;
	*len = n;
	b->off += 4 + (size_t)n;
	return 0;
}

int
buf_get_string_fixed(struct buf *b, void *out, size_t outcap, size_t *len)
{
	const uint8_t *p;
	size_t n;
	int r;

	*len = 0;
	if ((r = buf_get_string_direct(b, &p, &n, outcap)) != 0)
		return r;
	if (n > 0)
		memcpy(out, p, n);
	*len = n;
	return 0;
}

int
buf_get_cstring(struct buf *b, char **out, size_t maxlen)
{
	const uint8_t *p;
	size_t n, save = b->off;
	char *s;
	int r;

	*out = NULL;
	if ((r = buf_get_string_direct(b, &p, &n, maxlen)) != 0)
		return r;
	if (n > 0 && memchr(p, '\0', n) != NULL) {
		b->off = save;
		return SOTTO_ERR_FORMAT;
	}
	if ((s = malloc(n + 1)) == NULL) {
		b->off = save;
		return SOTTO_ERR_NOMEM;
	}
	if (n > 0)
		memcpy(s, p, n);
	s[n] = '\0';
	*out = s;
	return 0;
}
