/*
 * value.c - value profiling for IR PGO: freestanding C, like profile.c.
 *
 * Code built with -fprofile-generate calls
 *     __llvm_profile_instrument_target(value, data, index)   at each indirect call,
 *     __llvm_profile_instrument_memop(size, data, index)     before each memcpy,
 *                                                             memset... of unknown size,
 * where `data` is the calling function's data record and `index` the value
 * site in it.  Those entry points belong to the glue (module.c in a process,
 * the kernel glue in a kernel), which forwards them here with the pool of
 * value nodes to take from; kcovprof.h describes the pool.
 *
 * The algorithm is compiler-rt's (InstrProfilingValue.c, the same in LLVM
 * 14, 16 and 19) step for step, so that one run gives the same value
 * profile through either runtime and optimisation decisions made from it
 * are the same:
 *   - a site's values form a list whose head is the site's slot in the
 *     compiler's static array (the record's Values, in __llvm_prf_vals);
 *   - a known value gets its count added;
 *   - a new value gets a node from the pool, appended at the tail, while the
 *     site holds fewer than max_per_site values (24);
 *   - on a full site, the first least-counted node is replaced by the new
 *     value if its count is at most the new count, else loses that count:
 *     hot values stick, cold ones wear down and get replaced.
 *
 * Lock-free, as compiler-rt: a node is taken with one atomic add on the
 * pool cursor and published with compare-and-swap on the (null) link it
 * extends, after its value and count are stored, so a reader following
 * links with acquire loads sees whole nodes.  Lists only grow; nodes are
 * never freed or unlinked (reset only zeroes counts), which is what lets
 * profile.c take a consistent snapshot without a lock.  A node that loses
 * its compare-and-swap to another thread's is lost, and its value with it,
 * as in compiler-rt.  Counts are added atomically.
 *
 * Built without instrumentation (noinstr.h): a counted or traced runtime
 * would change the profile it records, or recurse.
 */
#include <stddef.h>
#include <stdint.h>

#include "kcovprof.h"
#include "kcov/noinstr.h"

typedef uint64_t kp_u64 __attribute__((may_alias));

KCOV_PUBLIC uint32_t
kcovprof_values_offset(uint32_t raw_version)
{
	/* NameRef FuncHash CounterPtr [BitmapPtr (v10)] FunctionPointer Values */
	if (raw_version == KCOVPROF_RAW_V8)
		return 16 + 2 * sizeof(void *);
	if (raw_version == KCOVPROF_RAW_V10)
		return 16 + 3 * sizeof(void *);
	return 0;
}

KCOV_PUBLIC void
kcovprof_vpool_init(struct kcovprof_vpool *p, void *begin, void *end,
    uint32_t raw_version)
{
	p->cur = begin;
	p->end = (uintptr_t)end >= (uintptr_t)begin ? end : begin;
	p->values_off = kcovprof_values_offset(raw_version);
	p->max_per_site = KCOVPROF_VP_PER_SITE;
	p->dropped = 0;
}

KCOV_PUBLIC uint64_t
kcovprof_vpool_free(const struct kcovprof_vpool *p)
{
	uintptr_t cur = (uintptr_t)__atomic_load_n(&p->cur, __ATOMIC_RELAXED),
	          end = (uintptr_t)p->end;

	return cur < end ? (end - cur) / sizeof(struct kcovprof_vnode) : 0;
}

/* compiler-rt's allocateOneNode with static counters: the pool never hands
 * out a node that does not fit whole before `end`. */
KCOV_NOINSTR static struct kcovprof_vnode *
kp_take_node(struct kcovprof_vpool *p)
{
	const uintptr_t sz = sizeof(struct kcovprof_vnode);
	uintptr_t n;

	/* Checked before the add, so the cursor cannot run away (wrap) while
	 * the pool is empty and every call keeps failing. */
	if ((uintptr_t)__atomic_load_n(&p->cur, __ATOMIC_RELAXED) + sz >
	    (uintptr_t)p->end)
		return NULL;
	n = (uintptr_t)__atomic_fetch_add(&p->cur, sz, __ATOMIC_RELAXED);
	if (n + sz > (uintptr_t)p->end)
		return NULL;
	return (struct kcovprof_vnode *)n;
}

KCOV_PUBLIC void
kcovprof_value_add(struct kcovprof_vpool *p, uint64_t value, void *data,
    uint32_t index, uint64_t count)
{
	struct kcovprof_vnode **heads, *cur, *prev = NULL, *min = NULL, *node;
	uint64_t min_count = UINT64_MAX;
	uint32_t n = 0;

	if (data == NULL || count == 0)
		return;
	if (p->values_off == 0) {
		__atomic_fetch_add(&p->dropped, 1, __ATOMIC_RELAXED);
		return;
	}
	heads =
	    *(struct kcovprof_vnode ***)(void *)((char *)data + p->values_off);
	if (heads == NULL) {
		/* No static site array: compiler-rt would calloc one; we cannot. */
		__atomic_fetch_add(&p->dropped, 1, __ATOMIC_RELAXED);
		return;
	}

	for (cur = __atomic_load_n(&heads[index], __ATOMIC_ACQUIRE);
	    cur != NULL; cur = __atomic_load_n(&cur->next, __ATOMIC_ACQUIRE)) {
		uint64_t c;

		if (__atomic_load_n(&cur->value, __ATOMIC_RELAXED) == value) {
			__atomic_fetch_add(&cur->count, count,
			    __ATOMIC_RELAXED);
			return;
		}
		c = __atomic_load_n(&cur->count, __ATOMIC_RELAXED);
		if (c < min_count) {
			min_count = c;
			min = cur;
		}
		prev = cur;
		n++;
	}

	if (n >= p->max_per_site) {
		if (min == NULL)
			return; /* max_per_site 0: record nothing */
		if (min_count <= count) {
			__atomic_store_n(&min->value, value, __ATOMIC_RELAXED);
			__atomic_store_n(&min->count, count, __ATOMIC_RELAXED);
		} else {
			__atomic_fetch_sub(&min->count, count,
			    __ATOMIC_RELAXED);
		}
		return;
	}

	node = kp_take_node(p);
	if (node == NULL) {
		__atomic_fetch_add(&p->dropped, 1, __ATOMIC_RELAXED);
		return;
	}
	/* Pool nodes are zero until taken, and each is taken once. */
	node->value = value;
	node->count += count;
	{
		struct kcovprof_vnode *expected = NULL;
		struct kcovprof_vnode **link =
		    prev == NULL ? &heads[index] : &prev->next;

		/* compiler-rt tries the head only if the list was empty, the tail
		 * link only if it is still the tail: a lost race loses the node. */
		if (!__atomic_compare_exchange_n(link, &expected, node, 0,
		        __ATOMIC_RELEASE, __ATOMIC_RELAXED))
			__atomic_fetch_add(&p->dropped, 1, __ATOMIC_RELAXED);
	}
}

/* InstrProfGetRangeRepValue of InstrProfData.inc (LLVM 12 and later): sizes
 * 0-8 as they are, powers of two as they are, others to the previous power
 * of two + 1, 513 and more to 513. */
KCOV_PUBLIC uint64_t
kcovprof_memop_bucket(uint64_t size)
{
	if (size <= 8)
		return size;
	if (size >= 513)
		return 513;
	if ((size & (size - 1)) == 0)
		return size;
	return (UINT64_C(1) << (63 - __builtin_clzll(size))) + 1;
}

KCOV_PUBLIC void
kcovprof_value_target(struct kcovprof_vpool *p, uint64_t value, void *data,
    uint32_t index)
{
	kcovprof_value_add(p, value, data, index, 1);
}

KCOV_PUBLIC void
kcovprof_value_memop(struct kcovprof_vpool *p, uint64_t size, void *data,
    uint32_t index)
{
	kcovprof_value_add(p, kcovprof_memop_bucket(size), data, index, 1);
}
