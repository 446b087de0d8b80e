/*
 * Tiny benchmark helpers: run a body in batches, report the median and spread
 * of the per-operation cost across batches.  Machines here are noisy, so the
 * median of many short batches is quoted, never a single timing.
 */
#ifndef SOTTO_BENCH_H
#define SOTTO_BENCH_H

#include <stddef.h>

struct bench_result {
	double median_ns; /* per operation */
	double min_ns;
	double max_ns;
	size_t batches;
	size_t ops_per_batch;
};

typedef void (*bench_fn)(void *arg);

/* Time fn over batches x ops calls; fn is one operation. */
void bench_run(struct bench_result *res, bench_fn fn, void *arg, size_t batches, size_t ops);
/* Print "name: median X ns/op (min .. max), N batches x M ops". */
void bench_print(const char *name, const struct bench_result *res);

#endif
