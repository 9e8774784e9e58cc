/*
 * kcov_td.h (Linux kernel) - how a callback finds the current task's
 * descriptor.
 *
 * `kcov_cur` is the kcov_task of the task now running on this CPU, or NULL:
 * the owner's preempt notifier sets it at every sched-in and clears it at
 * every sched-out, so while it is non-NULL the CPU runs the owner (or an
 * interrupt on top of it).  With no task tracing, the callback costs one
 * %gs-relative load and a branch.  Then, like Linux's check_kcov_mode(),
 * only task context records (never hard or soft IRQ or NMI), and the owner
 * test guards the short window of a context switch.
 *
 * Why not a hash table keyed by `current`: it costs a hash, a load of the
 * bucket and a compare on every callback even when nobody traces, and needs
 * RCU to free entries; the notifier costs nothing on the hot path and only
 * a pointer store per context switch of a traced task.
 *
 * Untraced, __sanitizer_cov_trace_pc compiles (gcc-12) to
 * `mov %gs:kcov_cur,%rax; test %rax,%rax; jne; ret`.  Rough figures under
 * qemu TCG (2 vCPUs; only the ratios mean anything): a write to kcovtest.ko
 * (about 13 PC callbacks) took 2.5-2.8 us built without coverage, 3.1 us
 * instrumented with nobody tracing, 3.4-4.2 us traced.
 */
#ifndef KCOV_TD_H
#define KCOV_TD_H

#include <linux/compiler.h>
#include <linux/percpu.h>
#include <linux/preempt.h>
#include <linux/sched.h>

#include "engine.h"
#include "kcov_linux.h"

static __always_inline KCOV_NOINSTR struct kcov_desc *
kcov_self_desc(void)
{
	struct kcov_task *kt = this_cpu_read(kcov_cur);

	if (kcov_likely(kt == NULL))
		return NULL;
	if (!in_task() || kt->task != current)
		return NULL;
	return READ_ONCE(kt->td.desc);
}

#endif /* KCOV_TD_H */
