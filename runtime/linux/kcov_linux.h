/*
 * kcov_linux.h - the Linux kernel module's own types, shared by its files.
 *
 * The stock task_struct has no kcov fields, so a task that enables a
 * descriptor gets a struct kcov_task: the engine's per-thread state plus a
 * preempt notifier.  The notifier keeps the per-CPU pointer `kcov_cur` equal
 * to the kcov_task of the task running on that CPU (set at sched-in, cleared
 * at sched-out), which makes the callbacks' lookup one per-CPU load; see
 * kcov_td.h and platform.c.
 */
#ifndef KCOV_LINUX_H
#define KCOV_LINUX_H

#include <linux/fs.h>
#include <linux/mutex.h>
#include <linux/percpu.h>
#include <linux/preempt.h>
#include <linux/sched.h>
#include <linux/workqueue.h>

#include "engine.h"

/*
 * One per task that owns a descriptor, alive exactly while the task is
 * bound (td.desc != NULL): allocated on its enable, freed on its disable or,
 * after its exit, by a work item.  Only the task itself touches `pn` and
 * `kcov_cur`, so no lock protects them.
 */
struct kcov_task {
	struct kcov_thread td;        /* the engine's per-thread state */
	struct task_struct *task;     /* the owner; no reference needed */
	struct preempt_notifier pn;   /* registered on the owner while bound */
	struct work_struct exit_work; /* kcov_thread_exit() after the exit */
	bool bound;                   /* pn registered, module ref taken */
};

/* The buffer: vmalloc_user memory, owned by an anonymous file (see device.c). */
struct kcov_buf {
	void *area;
	size_t size;
};

/* One open file of /dev/kcov or /sys/kernel/debug/kcov. */
struct kcov_file {
	struct kcov_desc desc; /* the engine's descriptor */
	struct mutex lock;     /* kcov_plat_lock(); never on the hot path */
	int personality;       /* enum kcov_abi of the node it was opened on */
	struct file *bfile;    /* the buffer's file, published by sizing */
};

static inline struct kcov_file *
kcov_file_of(struct kcov_desc *d)
{
	return container_of(d, struct kcov_file, desc);
}

static inline struct kcov_task *
kcov_task_of(struct kcov_thread *td)
{
	return container_of(td, struct kcov_task, td);
}

DECLARE_PER_CPU(struct kcov_task *, kcov_cur);

/* platform.c */
extern atomic_t kcov_live_descs, kcov_live_tasks, kcov_live_bufs;
int kcov_linux_init(void);
void kcov_linux_exit(void);
struct kcov_task *kcov_task_get(void);
void kcov_task_settle(struct kcov_task *kt);
void kcov_flush_exits(void);
void kcov_file_free(struct kcov_file *kf);
struct file *kcov_buf_file(void *area, size_t size);
void kcov_record_cmp(uint64_t type, uint64_t a, uint64_t b, uint64_t pc);

#endif /* KCOV_LINUX_H */
