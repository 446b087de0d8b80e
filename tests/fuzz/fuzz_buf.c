/* libFuzzer target: the byte reader must never read out of bounds on any input. */
#include "config.h"

#include <stdlib.h>

#include "crypto/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf b;
	const uint8_t *p;
	size_t n;
	uint64_t u64;
	uint8_t op;
	char *s;

	buf_init_reader(&b, data, size);
	while (buf_get_u8(&b, &op) == 0) {
		switch (op % 4) {
		case 0:
			if (buf_get_string_direct(&b, &p, &n, 4096) != 0)
				return 0;
			break;
		case 1:
			if (buf_get_cstring(&b, &s, 4096) != 0)
				return 0;
			free(s);
			break;
		case 2:
			if (buf_get_u64(&b, &u64) != 0)
				return 0;
			break;
		default:
			if (buf_skip(&b, op >> 2) != 0)
				return 0;
			break;
		}
	}
	return 0;
}
