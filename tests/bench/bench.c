/* Benchmark helpers; see bench.h. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench.h"

static double
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

void
bench_run(struct bench_result *res, bench_fn fn, void *arg, size_t batches, size_t ops)
{
	double *per = calloc(batches, sizeof(*per));
	size_t i, j;

	if (per == NULL) {
		fprintf(stderr, "bench: out of memory\n");
		exit(2);
	}
	/* One warm-up batch so caches and lazy initialisation do not count. */
	for (j = 0; j < ops; j++)
		fn(arg);
	for (i = 0; i < batches; i++) {
		double t0 = now_ns();

		for (j = 0; j < ops; j++)
			fn(arg);
		per[i] = (now_ns() - t0) / (double)ops;
	}
	qsort(per, batches, sizeof(*per), cmp_double);
	res->median_ns =
	        batches % 2 ? per[batches / 2] : (per[batches / 2 - 1] + per[batches / 2]) / 2;
	res->min_ns = per[0];
	res->max_ns = per[batches - 1];
	res->batches = batches;
	res->ops_per_batch = ops;
	free(per);
}

void
bench_print(const char *name, const struct bench_result *res)
{
	printf("%-44s median %10.0f ns/op  (min %.0f, max %.0f; %zu batches x %zu ops)\n", name,
	        res->median_ns, res->min_ns, res->max_ns, res->batches, res->ops_per_batch);
}
