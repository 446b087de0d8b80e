/*
 * Definitions cppcheck needs because it does not read system headers:
 * without the loop macro it takes TAILQ_FOREACH bodies for code that reads
 * uninitialised variables.
 */
#define TAILQ_FOREACH(var, head, field) \
	for ((var) = ((head)->tqh_first); (var); (var) = ((var)->field.tqe_next))
