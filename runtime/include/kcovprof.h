/*
 * kcovprof.h - a freestanding LLVM profile runtime: raw profiles (.profraw)
 * of clang's source-based coverage, and .sancov files of trace-pc coverage.
 *
 * Code built with `-fprofile-instr-generate -fcoverage-mapping` keeps its
 * counters in four ELF sections: __llvm_prf_data (one record per function),
 * __llvm_prf_cnts (the counters), __llvm_prf_bits (MC/DC bitmaps, LLVM 18+)
 * and __llvm_prf_names (compressed function names).  compiler-rt's profile
 * runtime serialises them with libc; this one needs nothing but the section
 * bounds, so the same code serves a process, a kernel module and a kernel.
 *
 * A *module* is one linked image (an executable, a shared object, a kernel
 * module) with its own copy of the four sections.  Its glue fills a struct
 * kcovprof_module with the section bounds and calls kcovprof_module_init()
 * once; every other call only reads the sections, except kcovprof_reset().
 *
 *   hosted:  a small object linked into each instrumented image
 *            (kcovprof-module*.o) takes the bounds from the linker's
 *            __start_/__stop_ symbols and registers with the process-wide
 *            registry in libkcovrt (profile/hosted.c), which writes each
 *            module's profile when the module goes away (exit or dlclose),
 *            following LLVM_PROFILE_FILE like compiler-rt.
 *   kernel:  a module built with ld -r has no __start_/__stop_ symbols;
 *            kcov-build links it with a script that brackets each section
 *            with __kcovprof_<sec>_begin/_end, and kcov.ko (linux/kprofile.c)
 *            looks them up in the module's symbol table as it loads, and
 *            serves /sys/kernel/debug/kcov-profile/<module>.profraw.
 *
 * Raw profile versions.  The runtime writes the two layouts of the clangs in
 * Debian 12: v8 (LLVM 14-17, so clang-14 and clang-16) and v10 (LLVM 19-22,
 * clang-19).  The layout must be the compiler's, not ours, and a clang
 * frontend does not say which it used: plain -fprofile-instr-generate emits
 * no __llvm_profile_raw_version (checked with clang-14, -16 and -19).  So
 * kcovprof_module_init() decides from three witnesses and refuses any
 * disagreement instead of writing a file llvm-profdata would misread:
 *   1. `expect`: what the build knows (kcov-build links the stub object for
 *      the compiler it drives; 0 if unknown);
 *   2. `raw_version_var`: the compiler's __llvm_profile_raw_version when it
 *      emits one (IR PGO, single-byte coverage), else NULL;
 *   3. the data section itself: every record's relative CounterPtr must land
 *      inside the counters section for exactly one of the record layouts
 *      (48 or 64 bytes on 64-bit targets).
 *
 * Concurrency.  Instrumented code keeps running while a profile is taken.
 * The header and the data records depend only on the (immutable) section
 * bounds and contents, so they are always consistent; each counter is read
 * with one single-copy-atomic load, so no counter is torn, although the
 * counters are not one instant's picture.  kcovprof_reset() stores zeros the
 * same way; an increment racing with it may survive (the instrumentation's
 * own load/add/store is not atomic either).  Nothing here takes locks or
 * allocates; the glue serialises registration against snapshots.
 */
#ifndef KCOVPROF_H
#define KCOVPROF_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The raw versions this runtime writes. */
#define KCOVPROF_RAW_V8  8  /* LLVM 14-17 */
#define KCOVPROF_RAW_V10 10 /* LLVM 19-22 */

/* Variant bits of the version word (InstrProfData.inc). */
#define KCOVPROF_VARIANT_IR_PROF       (1ULL << 56)
#define KCOVPROF_VARIANT_CSIR_PROF     (1ULL << 57)
#define KCOVPROF_VARIANT_INSTR_ENTRY   (1ULL << 58)
#define KCOVPROF_VARIANT_DBG_CORRELATE (1ULL << 59)
#define KCOVPROF_VARIANT_BYTE_COVERAGE (1ULL << 60)
#define KCOVPROF_VARIANT_FUNC_ENTRY    (1ULL << 61)
#define KCOVPROF_VARIANT_MEMPROF       (1ULL << 62)
#define KCOVPROF_VARIANT_TEMPORAL      (1ULL << 63)

/* Errors: negative, so that size-returning calls can return them too. */
#define KCOVPROF_OK        0
/* the compiler uses a raw version we do not write */
#define KCOVPROF_EVERSION  (-1)
/* the build expected another raw version than the code has */
#define KCOVPROF_EMISMATCH (-2)
#define KCOVPROF_ELAYOUT   (-3) /* the sections parse as no supported layout */
/* a variant this runtime cannot write (correlation, temporal) */
#define KCOVPROF_EVARIANT  (-4)
#define KCOVPROF_ENOSPC    (-5) /* the caller's buffer is too small */
#define KCOVPROF_EWRITE    (-6) /* the write callback failed */
#define KCOVPROF_EINCOMPAT (-7) /* merge: the profile is from another binary */
#define KCOVPROF_EFORMAT   (-8) /* merge: not a raw profile of this layout */
/* bad argument, or the module was not initialised */
#define KCOVPROF_EINVAL    (-9)

/* A short English description of a KCOVPROF_E* code. */
const char *kcovprof_strerror(int err);

/* Section bounds: [begin, end) each; begin == end (or both NULL) if absent. */
struct kcovprof_sections {
	const char *data_begin, *data_end;   /* __llvm_prf_data */
	char *cnts_begin, *cnts_end;         /* __llvm_prf_cnts */
	char *bits_begin, *bits_end;         /* __llvm_prf_bits (v10; MC/DC) */
	const char *names_begin, *names_end; /* __llvm_prf_names */
	/* __llvm_prf_vnds (counted for %m; the glue's node pool) */
	const char *vnds_begin, *vnds_end;
};

/*
 * One module.  The glue fills the "in" fields and calls kcovprof_module_init;
 * the "out" fields are then read-only.  `link` and `glue` belong to the
 * glue (the hosted registry uses them).
 */
#define KCOVPROF_MODULE_ABI   2
#define KCOVPROF_BUILD_ID_MAX 64

struct kcovprof_vpool;

struct kcovprof_module {
	/* in */
	uint32_t abi;    /* KCOVPROF_MODULE_ABI */
	uint32_t expect; /* raw version the build expects, 0 = unknown */
	/* the compiler's __llvm_profile_raw_version, or NULL */
	const uint64_t *raw_version_var;
	struct kcovprof_sections sec;
	uint32_t build_id_len; /* 0: no binary ID in the profile */
	uint8_t build_id[KCOVPROF_BUILD_ID_MAX];
	/* the compiler's __llvm_profile_filename, or NULL */
	const char *default_filename;
	/* where the image's value nodes come from, or NULL */
	struct kcovprof_vpool *vpool;
	/* out (kcovprof_module_init) */
	int status;       /* KCOVPROF_OK or the error that stops writing */
	uint64_t version; /* the version word written (variant bits included) */
	uint32_t record_size;  /* bytes per data record */
	uint32_t counter_size; /* 8, or 1 with single-byte coverage */
	uint64_t num_data, num_counters, num_bitmap_bytes, names_size;
	/* bytes of value-profile data with no value recorded */
	uint64_t vp_size;
	uint64_t size; /* bytes of a raw profile with no value recorded; with
	                                 * value profiling (IR PGO) it grows: kcovprof_size() */
	/* glue */
	struct kcovprof_module *link;
	uint64_t id;
	void *glue;
};

/*
 * Decide the layout and check the sections (see the top of this file).
 * Returns and stores m->status.  Not on any hot path: it walks the records.
 */
int kcovprof_module_init(struct kcovprof_module *m);

/*
 * The sink of a serialisation: called with consecutive pieces of the file.
 * data == NULL means `len` zero bytes.  Returns 0, or non-zero to stop.
 */
typedef int (*kcovprof_write_fn)(void *ctx, const void *data, size_t len);

/*
 * Bytes of one raw profile of m now, or a negative error.  Without value
 * profiling that is m->size; with it, the recorded values add to it, and
 * more may be recorded before the profile is written: a writer sizing a
 * buffer with this retries on KCOVPROF_ENOSPC.
 */
int64_t kcovprof_size(const struct kcovprof_module *m);

/*
 * Serialise m through fn: 0 or a negative error.  Value data are written
 * as they are when each function's turn comes; a function's value sites
 * past the KCOVPROF_VP_STREAM_SITES-th are written empty (the per-site
 * counts must be known before its values and are kept on the stack; no
 * compiler-generated function has that many).  kcovprof_write_buffer has
 * no such limit.
 */
#define KCOVPROF_VP_STREAM_SITES 256
int kcovprof_write(const struct kcovprof_module *m, kcovprof_write_fn fn,
    void *ctx);

/* Serialise m into buf: the size written, or KCOVPROF_ENOSPC (nothing useful
 * in buf; values recorded meanwhile may need more than kcovprof_size said)
 * or another negative error. */
int64_t kcovprof_write_buffer(const struct kcovprof_module *m, void *buf,
    size_t cap);

/* Zero the counters (0xff with single-byte coverage), the bitmaps and the
 * counts of the recorded values (the values stay, as with compiler-rt). */
int kcovprof_reset(struct kcovprof_module *m);

/*
 * Merge `src` (a raw profile of the same module, as found in a file) with
 * `dst` (a profile of m just written by kcovprof_write_buffer) into `out`:
 * counters add (AND for single-byte coverage), bitmaps OR, and src's
 * values are recorded into dst's value sites by the rules of recording
 * (kcovprof_value_add), within m->vpool's free nodes and max_per_site --
 * what compiler-rt does when it merges a %m file into the running image.
 * Returns the bytes written to out, at most dst_len + src_len.  The
 * profiles must agree on the layout, the sizes, the binary ID and every
 * function's name, hash, counter count and value sites, or
 * KCOVPROF_EINCOMPAT (different binary) or KCOVPROF_EFORMAT (not a raw
 * profile of this layout, truncated, malformed value data) is returned;
 * KCOVPROF_ENOSPC if out is too small.  dst and src are only read.
 */
int64_t kcovprof_merge(const struct kcovprof_module *m, const void *dst,
    size_t dst_len, const void *src, size_t src_len, void *out, size_t out_cap);

/* compiler-rt's module signature, the number %m puts in file names.  It
 * counts the value nodes of sec.vnds, which in a process includes the 1024
 * of the pool module.c adds, as compiler-rt adds its own. */
uint64_t kcovprof_signature(const struct kcovprof_module *m);

/* ----------------------------------------------------------------------------
 * Value profiling (IR PGO, -fprofile-generate; profile/value.c).
 *
 * The compiler calls, with `data` the caller's data record and `index` a
 * value site of it:
 *     void __llvm_profile_instrument_target(uint64_t value, void *data, uint32_t index);
 *     void __llvm_profile_instrument_memop(uint64_t size, void *data, uint32_t index);
 * (no clang on Debian 12 emits the older __llvm_profile_instrument_range).
 * The glue defines them as one-line forwards to kcovprof_value_target() and
 * kcovprof_value_memop() with a pool of nodes: compiler-rt's static
 * allocation, without malloc.  The pool is an array of struct
 * kcovprof_vnode; compiler-rt's is the image's __llvm_prf_vnds section,
 * where the compiler puts about one node per value site of each object and
 * compiler-rt adds KCOVPROF_VNODE_POOL more (module.c does the same).  The
 * record's Values field points to the compiler's array of one list head per
 * site (__llvm_prf_vals); its offset depends on the raw version, so the
 * pool carries it (kcovprof_values_offset; 0 drops every value).
 *
 * Hot path, lock-free and allocation-free: one atomic add takes a node, a
 * compare-and-swap links it.  A value that finds the pool empty, or loses a
 * linking race, is dropped and counted in `dropped`.  At most max_per_site
 * values are kept per site (compiler-rt: 24, or LLVM_VP_MAX_NUM_VALS_PER_SITE
 * up to 255); then the least counted one wears down and gets replaced.
 * ------------------------------------------------------------------------- */

/* compiler-rt's ValueProfNode (INSTR_PROF_VALUE_NODE). */
struct kcovprof_vnode {
	uint64_t value;
	uint64_t count;
	struct kcovprof_vnode *next;
};

/* compiler-rt's INSTR_PROF_VNODE_POOL_SIZE */
#define KCOVPROF_VNODE_POOL      1024
/* compiler-rt's INSTR_PROF_DEFAULT_NUM_VAL_PER_SITE */
#define KCOVPROF_VP_PER_SITE     24
#define KCOVPROF_VP_PER_SITE_MAX 255 /* INSTR_PROF_MAX_NUM_VAL_PER_SITE */

/* (a): updated with atomics by the hot path; the rest is set before any
 * value is recorded and then only read. */
struct kcovprof_vpool {
	struct kcovprof_vnode *cur; /* (a) the next free node */
	struct kcovprof_vnode *end; /* one past the pool */
	uint32_t values_off; /* offset of a data record's Values; 0: drop all */
	uint32_t max_per_site; /* values kept per site, 0..255 */
	uint64_t dropped;      /* (a) values not recorded */
};

/* The offset of Values in a data record of raw `version` (0 if unknown). */
uint32_t kcovprof_values_offset(uint32_t raw_version);
/* A pool of the nodes in [begin, end) for code of raw `version`. */
void kcovprof_vpool_init(struct kcovprof_vpool *p, void *begin, void *end,
    uint32_t raw_version);
/* Nodes not yet taken. */
uint64_t kcovprof_vpool_free(const struct kcovprof_vpool *p);
/* The bodies of __llvm_profile_instrument_target and _memop. */
void kcovprof_value_target(struct kcovprof_vpool *p, uint64_t value, void *data,
    uint32_t index);
void kcovprof_value_memop(struct kcovprof_vpool *p, uint64_t size, void *data,
    uint32_t index);
/* Record `value` `count` times (compiler-rt's __llvm_profile_instrument_target_value). */
void kcovprof_value_add(struct kcovprof_vpool *p, uint64_t value, void *data,
    uint32_t index, uint64_t count);
/* The size a memop value site records for `size` (InstrProfGetRangeRepValue). */
uint64_t kcovprof_memop_bucket(uint64_t size);

/*
 * .sancov (SanitizerCoverage's raw coverage file): an 8-byte magic
 * (0xC0BFFFFFFFFFFF64, 64-bit offsets) and module-relative PCs.  `pcs` are
 * callback return addresses as kcov records them, in any order, duplicates
 * allowed (the sancov tool sorts and de-duplicates).  Those in [lo, hi) are
 * written as (previous-instruction PC - bias), the convention of compiler-rt
 * and of the sancov tool; the others are skipped.
 */
#define KCOVPROF_SANCOV_MAGIC64 0xC0BFFFFFFFFFFF64ULL
int64_t kcovprof_sancov_size(const uint64_t *pcs, size_t n, uint64_t lo,
    uint64_t hi);
int kcovprof_sancov_write(const uint64_t *pcs, size_t n, uint64_t lo,
    uint64_t hi, uint64_t bias, kcovprof_write_fn fn, void *ctx);
int64_t kcovprof_sancov_write_buffer(const uint64_t *pcs, size_t n, uint64_t lo,
    uint64_t hi, uint64_t bias, void *buf, size_t cap);

/* ----------------------------------------------------------------------------
 * The hosted registry (libkcovrt, profile/hosted.c).
 * ------------------------------------------------------------------------- */

/* Called by the per-image stub object: init + add to the registry. */
int kcovprof_register(struct kcovprof_module *m);
/* Write m's profile (unless disabled) and remove it from the registry. */
void kcovprof_unregister(struct kcovprof_module *m);

/* What one registered module is, for kcovprof_modules(). */
struct kcovprof_info {
	uint64_t id;      /* unique in this process; never reused */
	uint64_t version; /* version word (0 if status != 0 and unresolved) */
	uint64_t num_data, num_counters, num_bitmap_bytes, names_size;
	uint64_t size;      /* bytes of a raw profile */
	uint64_t signature; /* %m's number */
	int32_t status;
	uint32_t build_id_len;
	uint8_t build_id[KCOVPROF_BUILD_ID_MAX];
	char name[1024]; /* the image's path ("" if unknown) */
};

/* Up to `cap` registered modules, oldest first; returns how many there are. */
int kcovprof_modules(struct kcovprof_info *out, int cap);
/* A raw profile of module `id` into buf: its size, or a negative error
 * (KCOVPROF_EINVAL: no such module). */
int64_t kcovprof_snapshot(uint64_t id, void *buf, size_t cap);
/* Reset module `id`, or every module with id 0. */
int kcovprof_reset_module(uint64_t id);
/*
 * The file name pattern, with compiler-rt's precedence: this call, else
 * LLVM_PROFILE_FILE, else the compiler's -fprofile-instr-generate=PATH, else
 * default.profraw.  %p (pid), %h (host name), %t ($TMPDIR), %m and %Nm (a
 * per-module file, merged with what is there) and %% are expanded.  NULL
 * returns to the environment's choice.
 */
void kcovprof_set_filename(const char *pattern);
/* 0 disables writing when modules go away (exit, dlclose); 1 enables. */
void kcovprof_set_write_at_exit(int on);
/* Write every module's profile now, as at exit: 0, or -1 if any failed
 * (each failure is reported on stderr). */
int kcovprof_write_files(void);
/* Where module `id`'s profile would be written now ("" if none). */
int kcovprof_filename(uint64_t id, char *buf, size_t cap);

/* The loaded image holding `pc`: bias (load address), the range of its
 * executable segments, and its path.  0, or -1 if no image holds pc. */
int kcovprof_image_of(uint64_t pc, uint64_t *bias, uint64_t *lo, uint64_t *hi,
    char *name, size_t cap);

#ifdef __cplusplus
}
#endif

#endif /* KCOVPROF_H */
