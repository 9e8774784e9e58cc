/*
 * hosted.c - the profile runtime's user-space glue (part of libkcovrt).
 *
 * One registry per process holds every instrumented image that registered
 * (module.c, linked into each image).  It writes an image's profile when the
 * image goes away, names files the way compiler-rt does, and serves the
 * Python package (kcov.profile) and C callers at any moment:
 * kcovprof_snapshot, kcovprof_reset_module, kcovprof_write_files.  The
 * compiler-rt entry points programs call by hand (__llvm_profile_write_file,
 * __llvm_profile_reset_counters, __llvm_profile_set_filename,
 * __llvm_profile_dump) are here too, acting on every registered image.
 *
 * File names follow compiler-rt's InstrProfilingFile.c: the pattern comes
 * from kcovprof_set_filename (runtime API), else LLVM_PROFILE_FILE, else the
 * image's -fprofile-instr-generate=PATH, else "default.profraw"; %p, %h, %t
 * and %m/%Nm expand as there, %c and %Nx are accepted and ignored (no
 * continuous mode, no exit-on-signal), and an unknown %X is dropped.  As
 * there, the first process of a process tree that registers instrumented
 * code truncates the file once, and every image then appends its profile,
 * so one file can hold several raw profiles back to back (llvm-profdata
 * reads them all).  With %m each image merges into its own file under an
 * exclusive lock.  A write that fails is undone (the file is cut back to
 * its old size), so no file holds half a profile.
 *
 * Locking: `kp_lock` protects the registry and the settings; it is never
 * taken by instrumented code, which calls nothing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kcovprof.h"
#include "kcov/noinstr.h"

#define PROG          "kcov profile"
/* compiler-rt's: shared so that a tree mixing both runtimes truncates once. */
#define INIT_ONCE_ENV "__LLVM_PROFILE_RT_INIT_ONCE"

static pthread_mutex_t kp_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kcovprof_module *kp_head; /* (l) registration order */
static uint64_t kp_next_id = 1;         /* (l) */
static char *kp_api_pattern;            /* (l) kcovprof_set_filename */
static int kp_at_exit = 1;              /* (l) */
static int kp_dumped;                   /* (l) __llvm_profile_dump was called */
static int kp_root = -1; /* (l) 1: this process truncates; -1: undecided */
static int kp_warned_continuous; /* (l) */

KCOV_NOINSTR static void
kp_atfork_prepare(void)
{
	pthread_mutex_lock(&kp_lock);
}

KCOV_NOINSTR static void
kp_atfork_release(void)
{
	pthread_mutex_unlock(&kp_lock);
}

KCOV_NOINSTR static void
kp_atfork_child(void)
{
	kp_root = 0; /* a forked child appends to what its parent truncated */
	pthread_mutex_unlock(&kp_lock);
}

KCOV_NOINSTR __attribute__((constructor)) static void
kp_hosted_init(void)
{
	pthread_atfork(kp_atfork_prepare, kp_atfork_release, kp_atfork_child);
}

/* --- Images ----------------------------------------------------------------- */

struct kp_image {
	uintptr_t addr;
	uint64_t bias, lo, hi;
	char *name;
	size_t cap;
	int found;
};

KCOV_NOINSTR static int
kp_image_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct kp_image *im = arg;
	uint64_t lo = UINT64_MAX, hi = 0;
	int i, inside = 0;

	(void)size;
	for (i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *p = &info->dlpi_phdr[i];
		uint64_t b = info->dlpi_addr + p->p_vaddr, e = b + p->p_memsz;

		if (p->p_type != PT_LOAD)
			continue;
		if (im->addr >= b && im->addr < e)
			inside = 1;
		if (p->p_flags & PF_X) {
			lo = b < lo ? b : lo;
			hi = e > hi ? e : hi;
		}
	}
	if (!inside)
		return 0;
	im->bias = info->dlpi_addr;
	im->lo = lo == UINT64_MAX ? 0 : lo;
	im->hi = hi;
	im->found = 1;
	if (im->name != NULL && im->cap > 0) {
		const char *n = info->dlpi_name;

		im->name[0] = '\0';
		if (n == NULL || n[0] == '\0') {
			/* The main program has no name here. */
			ssize_t k =
			    readlink("/proc/self/exe", im->name, im->cap - 1);

			im->name[k > 0 ? k : 0] = '\0';
		} else {
			snprintf(im->name, im->cap, "%s", n);
		}
	}
	return 1;
}

KCOV_PUBLIC int
kcovprof_image_of(uint64_t pc, uint64_t *bias, uint64_t *lo, uint64_t *hi,
    char *name, size_t cap)
{
	struct kp_image im = { (uintptr_t)pc, 0, 0, 0, name, cap, 0 };

	dl_iterate_phdr(kp_image_cb, &im);
	if (!im.found)
		return -1;
	if (bias != NULL)
		*bias = im.bias;
	if (lo != NULL)
		*lo = im.lo;
	if (hi != NULL)
		*hi = im.hi;
	return 0;
}

KCOV_NOINSTR static const char *
kp_name(const struct kcovprof_module *m)
{
	return m->glue != NULL ? (const char *)m->glue : "?";
}

/* --- File names ------------------------------------------------------------- */

/* The pattern in force for m.  Called with kp_lock held. */
KCOV_NOINSTR static const char *
kp_pattern(const struct kcovprof_module *m)
{
	const char *env = getenv("LLVM_PROFILE_FILE");

	if (kp_api_pattern != NULL)
		return kp_api_pattern;
	if (env != NULL && env[0] != '\0')
		return env;
	if (m != NULL && m->default_filename != NULL)
		return m->default_filename;
	return "default.profraw";
}

/*
 * Expand `pat` for m into out: 0, or -1 if it does not fit.  *pool is the
 * merge pool size (%Nm; 0 without %m).  Called with kp_lock held.
 */
KCOV_NOINSTR static int
kp_expand(const char *pat, const struct kcovprof_module *m, char *out,
    size_t cap, unsigned *pool)
{
	size_t j = 0;
	char piece[512];

	*pool = 0;
	for (const char *p = pat; *p != '\0'; p++) {
		const char *add = NULL;

		if (*p != '%') {
			if (j + 1 >= cap)
				return -1;
			out[j++] = *p;
			continue;
		}
		p++;
		if (*p == '\0')
			break;
		if (*p == 'p') {
			snprintf(piece, sizeof(piece), "%ld", (long)getpid());
			add = piece;
		} else if (*p == 'h') {
			if (gethostname(piece, sizeof(piece) - 1) != 0)
				piece[0] = '\0';
			piece[sizeof(piece) - 1] = '\0';
			add = piece;
		} else if (*p == 't') {
			const char *t = getenv("TMPDIR");

			snprintf(piece, sizeof(piece), "%s/",
			    t != NULL ? t : "");
			add = t != NULL ? piece : "";
		} else if (*p == 'c') {
			if (!kp_warned_continuous) {
				kp_warned_continuous = 1;
				fprintf(stderr,
				    PROG
				    ": %%c (continuous mode) is not supported; "
				    "profiles are written at exit\n");
			}
			continue;
		} else if (*p >= '1' && *p <= '9' &&
		    (p[1] == 'x' ||
		        (p[1] >= '0' && p[1] <= '9' && p[2] == 'x'))) {
			/* %Nx: exit on signal N, not supported */
			p += p[1] == 'x' ? 1 : 2;
			continue;
		} else {
			unsigned n = 0;
			const char *q = p;

			while (*q >= '0' && *q <= '9')
				n = n * 10 + (unsigned)(*q++ - '0');
			if (*q != 'm')
				/* compiler-rt drops unknown specifiers */
				continue;
			p = q;
			*pool = n != 0 ? n : 1;
			snprintf(piece, sizeof(piece), "%llu_%d",
			    (unsigned long long)kcovprof_signature(m),
			    (int)(getpid() % (pid_t)*pool));
			add = piece;
		}
		for (; add != NULL && *add != '\0'; add++) {
			if (j + 1 >= cap)
				return -1;
			out[j++] = *add;
		}
	}
	out[j] = '\0';
	return j == 0 ? -1 : 0;
}

KCOV_NOINSTR static void
kp_mkdirs(const char *path)
{
	char tmp[4096];
	size_t n = strlen(path);

	if (n >= sizeof(tmp))
		return;
	memcpy(tmp, path, n + 1);
	for (char *s = tmp + 1; *s != '\0'; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		(void)mkdir(tmp, 0755);
		*s = '/';
	}
}

/* --- Writing ---------------------------------------------------------------- */

KCOV_NOINSTR static int
kp_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t k = write(fd, p, len);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		len -= (size_t)k;
	}
	return 0;
}

KCOV_NOINSTR static int
kp_read_all(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len > 0) {
		ssize_t k = pread(fd, p, len, (off_t)(p - (char *)buf));

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		len -= (size_t)k;
	}
	return 0;
}

/*
 * Merge buf (a fresh profile of m) with the file's and write the sum back,
 * under an exclusive lock: %m's online merging.
 */
KCOV_NOINSTR static int
kp_write_merged(const struct kcovprof_module *m, const char *path, void *buf,
    size_t len)
{
	struct stat st;
	void *old = NULL, *sum = NULL;
	int fd, rc = -1;
	int64_t n;

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
	if (fd < 0) {
		fprintf(stderr, PROG ": %s: cannot open: %s\n", path,
		    strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX) != 0 || fstat(fd, &st) != 0) {
		fprintf(stderr, PROG ": %s: cannot lock: %s\n", path,
		    strerror(errno));
		goto out;
	}
	if (st.st_size > 0) {
		old = malloc((size_t)st.st_size);
		if (old == NULL ||
		    kp_read_all(fd, old, (size_t)st.st_size) != 0) {
			fprintf(stderr,
			    PROG ": %s: cannot read it to merge: %s\n", path,
			    strerror(errno));
			goto out;
		}
		/* The sum of two profiles is never longer than both together. */
		sum = malloc(len + (size_t)st.st_size);
		if (sum == NULL) {
			fprintf(stderr,
			    PROG ": %s: out of memory to merge it\n", path);
			goto out;
		}
		n = kcovprof_merge(m, buf, len, old, (size_t)st.st_size, sum,
		    len + (size_t)st.st_size);
		if (n < 0) {
			fprintf(stderr,
			    PROG
			    ": %s: not merged (%s): %s; the file is left as it was\n",
			    path, kp_name(m), kcovprof_strerror((int)n));
			goto out;
		}
		buf = sum;
		len = (size_t)n;
	}
	if (lseek(fd, 0, SEEK_SET) != 0 || kp_write_all(fd, buf, len) != 0 ||
	    ftruncate(fd, (off_t)len) != 0) {
		fprintf(stderr, PROG ": %s: write failed: %s\n", path,
		    strerror(errno));
		goto out;
	}
	rc = 0;
out:
	free(old);
	free(sum);
	close(fd);
	return rc;
}

/* Append buf to path (created if missing), undoing a partial append. */
KCOV_NOINSTR static int
kp_write_append(const char *path, const void *buf, size_t len)
{
	struct stat st;
	int fd, rc = -1;

	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
	if (fd < 0) {
		fprintf(stderr, PROG ": %s: cannot open: %s\n", path,
		    strerror(errno));
		return -1;
	}
	/* Other processes of the tree append too: one profile at a time. */
	if (flock(fd, LOCK_EX) != 0 || fstat(fd, &st) != 0) {
		fprintf(stderr, PROG ": %s: cannot lock: %s\n", path,
		    strerror(errno));
		goto out;
	}
	if (st.st_size % 8 != 0) {
		/* Raw profiles start 8-aligned; the reader skips zero padding. */
		static const char zeros[8];

		if (kp_write_all(fd, zeros, 8 - (size_t)(st.st_size % 8)) != 0)
			goto fail;
	}
	if (kp_write_all(fd, buf, len) != 0)
		goto fail;
	rc = 0;
	goto out;
fail:
	fprintf(stderr, PROG ": %s: write failed: %s\n", path, strerror(errno));
	(void)ftruncate(fd, st.st_size);
out:
	close(fd);
	return rc;
}

/* Truncate the file once per process tree, as compiler-rt does at start-up.
 * Called with kp_lock held when the first image with data registers. */
KCOV_NOINSTR static void
kp_truncate_once(const struct kcovprof_module *m)
{
	char path[4096];
	unsigned pool;
	int fd;

	if (kp_root != -1)
		return;
	kp_root = getenv(INIT_ONCE_ENV) == NULL;
	if (!kp_root || !kp_at_exit)
		return;
	setenv(INIT_ONCE_ENV, INIT_ONCE_ENV, 1);
	if (kp_expand(kp_pattern(m), m, path, sizeof(path), &pool) != 0 ||
	    pool != 0)
		return; /* %m files are merged into, never truncated */
	kp_mkdirs(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	if (fd >= 0)
		close(fd);
}

/* Write m's profile to its file.  Called with kp_lock held. */
KCOV_NOINSTR static int
kp_write_module(const struct kcovprof_module *m)
{
	char path[4096];
	unsigned pool;
	void *buf;
	int64_t n;
	int rc;

	if (m->status != KCOVPROF_OK) {
		fprintf(stderr, PROG ": %s: no profile written: %s\n",
		    kp_name(m), kcovprof_strerror(m->status));
		return -1;
	}
	if (m->num_data == 0)
		return 0; /* nothing of this image is instrumented */
	if (kp_expand(kp_pattern(m), m, path, sizeof(path), &pool) != 0) {
		fprintf(stderr,
		    PROG ": %s: the profile file name is empty or too long\n",
		    kp_name(m));
		return -1;
	}
	if (m->vpool != NULL &&
	    __atomic_load_n(&m->vpool->dropped, __ATOMIC_RELAXED) != 0)
		fprintf(stderr,
		    PROG
		    ": %s: %llu values were not recorded: the %llu value-profile "
		    "nodes ran out (compile with -mllvm -vp-counters-per-site=N for more than the "
		    "default 1 node per value site)\n",
		    kp_name(m),
		    (unsigned long long)__atomic_load_n(&m->vpool->dropped,
		        __ATOMIC_RELAXED),
		    (unsigned long long)((uintptr_t)m->vpool->end -
		        (uintptr_t)m->sec.vnds_begin) /
		        sizeof(struct kcovprof_vnode));
	/* Other threads may record values meanwhile: size, write, and size
	 * again if that was not enough. */
	buf = NULL;
	n = KCOVPROF_ENOSPC;
	for (int tries = 0; n == KCOVPROF_ENOSPC && tries < 8; tries++) {
		int64_t size = kcovprof_size(m);
		size_t cap = size > 0 ? ((size_t)size + 4096) << tries : 0;

		free(buf);
		buf = cap > 0 ? malloc(cap) : NULL;
		if (buf == NULL) {
			fprintf(stderr,
			    PROG
			    ": %s: out of memory for a %lld-byte profile\n",
			    kp_name(m), (long long)size);
			return -1;
		}
		n = kcovprof_write_buffer(m, buf, cap);
	}
	if (n < 0) {
		fprintf(stderr, PROG ": %s: %s\n", kp_name(m),
		    kcovprof_strerror((int)n));
		free(buf);
		return -1;
	}
	kp_mkdirs(path);
	rc = pool != 0 ? kp_write_merged(m, path, buf, (size_t)n) :
	                 kp_write_append(path, buf, (size_t)n);
	free(buf);
	return rc;
}

/* --- Registration ----------------------------------------------------------- */

KCOV_PUBLIC int
kcovprof_register(struct kcovprof_module *m)
{
	char name[1024];
	int err;

	if (m == NULL)
		return KCOVPROF_EINVAL;
	err = kcovprof_module_init(m);
	if (kcovprof_image_of((uint64_t)(uintptr_t)m, NULL, NULL, NULL, name,
	        sizeof(name)) != 0)
		name[0] = '\0';
	/* dlopen("./x.so") names the image relative to the directory of that
	 * moment: keep the absolute path. */
	m->glue = name[0] != '\0' ? realpath(name, NULL) : NULL;
	if (m->glue == NULL)
		m->glue = strdup(name);
	pthread_mutex_lock(&kp_lock);
	m->id = kp_next_id++;
	m->link = NULL;
	{
		struct kcovprof_module **pp = &kp_head;

		while (*pp != NULL)
			pp = &(*pp)->link;
		*pp = m;
	}
	if (err != KCOVPROF_OK)
		fprintf(stderr, PROG ": %s: %s\n", kp_name(m),
		    kcovprof_strerror(err));
	else if (m->num_data != 0)
		kp_truncate_once(m);
	pthread_mutex_unlock(&kp_lock);
	return err;
}

KCOV_PUBLIC void
kcovprof_unregister(struct kcovprof_module *m)
{
	struct kcovprof_module **pp;

	pthread_mutex_lock(&kp_lock);
	for (pp = &kp_head; *pp != NULL && *pp != m; pp = &(*pp)->link)
		;
	if (*pp == m) {
		if (kp_at_exit && !kp_dumped)
			(void)kp_write_module(m);
		*pp = m->link;
	}
	pthread_mutex_unlock(&kp_lock);
	free(m->glue);
	m->glue = NULL;
}

/* --- The API of kcov.profile ---------------------------------------------------- */

KCOV_NOINSTR static struct kcovprof_module *
kp_find(uint64_t id)
{
	struct kcovprof_module *m;

	for (m = kp_head; m != NULL && m->id != id; m = m->link)
		;
	return m;
}

KCOV_PUBLIC int
kcovprof_modules(struct kcovprof_info *out, int cap)
{
	struct kcovprof_module *m;
	int n = 0;

	pthread_mutex_lock(&kp_lock);
	for (m = kp_head; m != NULL; m = m->link, n++) {
		struct kcovprof_info *i = &out[n];

		if (out == NULL || n >= cap)
			continue;
		memset(i, 0, sizeof(*i));
		i->id = m->id;
		i->version = m->version;
		i->num_data = m->num_data;
		i->num_counters = m->num_counters;
		i->num_bitmap_bytes = m->num_bitmap_bytes;
		i->names_size = m->names_size;
		i->size = m->status == KCOVPROF_OK ?
		    (uint64_t)kcovprof_size(m) :
		    m->size;
		i->signature =
		    m->status == KCOVPROF_OK ? kcovprof_signature(m) : 0;
		i->status = m->status;
		i->build_id_len = m->build_id_len;
		memcpy(i->build_id, m->build_id, m->build_id_len);
		snprintf(i->name, sizeof(i->name), "%s", kp_name(m));
	}
	pthread_mutex_unlock(&kp_lock);
	return n;
}

KCOV_PUBLIC int64_t
kcovprof_snapshot(uint64_t id, void *buf, size_t cap)
{
	struct kcovprof_module *m;
	int64_t n;

	pthread_mutex_lock(&kp_lock);
	m = kp_find(id);
	n = m == NULL ? KCOVPROF_EINVAL : kcovprof_write_buffer(m, buf, cap);
	pthread_mutex_unlock(&kp_lock);
	return n;
}

KCOV_PUBLIC int
kcovprof_reset_module(uint64_t id)
{
	struct kcovprof_module *m;
	int rc = id == 0 ? KCOVPROF_OK : KCOVPROF_EINVAL;

	pthread_mutex_lock(&kp_lock);
	for (m = kp_head; m != NULL; m = m->link) {
		if (id != 0 && m->id != id)
			continue;
		if (m->status == KCOVPROF_OK)
			rc = kcovprof_reset(m);
		else if (id != 0)
			rc = m->status;
	}
	pthread_mutex_unlock(&kp_lock);
	return rc;
}

KCOV_PUBLIC void
kcovprof_set_filename(const char *pattern)
{
	char *copy = pattern != NULL ? strdup(pattern) : NULL;

	pthread_mutex_lock(&kp_lock);
	free(kp_api_pattern);
	kp_api_pattern = copy;
	if (kp_root == 1 && kp_at_exit && kp_head != NULL) {
		/* A new file for this process tree starts empty, like the first. */
		kp_root = -1;
		unsetenv(INIT_ONCE_ENV);
		kp_truncate_once(kp_head);
	}
	pthread_mutex_unlock(&kp_lock);
}

KCOV_PUBLIC void
kcovprof_set_write_at_exit(int on)
{
	pthread_mutex_lock(&kp_lock);
	if (on && !kp_at_exit && kp_root == 1 && kp_head != NULL) {
		/* Writing was off when the first image came: start its file now. */
		kp_at_exit = 1;
		kp_root = -1;
		kp_truncate_once(kp_head);
	}
	kp_at_exit = on != 0;
	pthread_mutex_unlock(&kp_lock);
}

KCOV_PUBLIC int
kcovprof_write_files(void)
{
	struct kcovprof_module *m;
	int rc = 0;

	pthread_mutex_lock(&kp_lock);
	for (m = kp_head; m != NULL; m = m->link)
		if (kp_write_module(m) != 0)
			rc = -1;
	pthread_mutex_unlock(&kp_lock);
	return rc;
}

KCOV_PUBLIC int
kcovprof_filename(uint64_t id, char *buf, size_t cap)
{
	struct kcovprof_module *m;
	unsigned pool;
	int rc = -1;

	pthread_mutex_lock(&kp_lock);
	m = kp_find(id);
	if (m != NULL && buf != NULL && cap > 0)
		rc = kp_expand(kp_pattern(m), m, buf, cap, &pool);
	pthread_mutex_unlock(&kp_lock);
	return rc;
}

/* --- compiler-rt's public entry points (clang's SourceBasedCodeCoverage.rst) --- */

KCOV_PUBLIC int
__llvm_profile_write_file(void)
{
	return kcovprof_write_files();
}

KCOV_PUBLIC int
__llvm_profile_dump(void)
{
	int rc = kcovprof_write_files();

	pthread_mutex_lock(&kp_lock);
	kp_dumped = 1;
	pthread_mutex_unlock(&kp_lock);
	return rc;
}

KCOV_PUBLIC void
__llvm_profile_reset_counters(void)
{
	(void)kcovprof_reset_module(0);
}

KCOV_PUBLIC void
__llvm_profile_set_filename(const char *pattern)
{
	kcovprof_set_filename(pattern);
}
