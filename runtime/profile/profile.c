/*
 * profile.c - the raw profile (.profraw) serialiser: freestanding C.
 *
 * It includes only <stddef.h> and <stdint.h> and calls nothing: the hosted
 * glue (hosted.c) and a kernel glue supply the section bounds and a sink.
 * The layouts follow InstrProfData.inc of LLVM 14 and 16 (raw v8) and 19
 * (raw v10), as Debian ships them, and compiler-rt's InstrProfilingWriter.c
 * and InstrProfilingBuffer.c; kcovprof.h says how the version is chosen and
 * what a snapshot guarantees while instrumented code keeps running.
 *
 * File layout (all words native-endian; pad8(n) zero bytes round n up to 8):
 *   header            11 (v8) or 16 (v10) uint64_t words
 *   binary ID         { u64 len; u8 id[len]; pad8(len) }, if the glue has one
 *   data records      the __llvm_prf_data section as it is in memory
 *   counters          NumCounters x 8 (x 1 with single-byte coverage), pad8
 *   bitmaps (v10)     NumBitmapBytes, pad8
 *   names             the __llvm_prf_names section, pad8
 *   value data        one ValueProfData per record that has value sites:
 *                       { u32 TotalSize; u32 NumValueKinds }, then per kind
 *                       with sites { u32 Kind; u32 NumValueSites;
 *                       u8 SiteCount[NumValueSites], pad8 } and the
 *                       { u64 Value; u64 Count } of each site in order
 *
 * Value data (IR PGO) are walked from the lists value.c builds, as
 * compiler-rt's InstrProfilingWriter.c does: a site's count is its list's
 * length (at most 255), then that many nodes are written.  Lists only grow
 * at the tail and are never unlinked, so once a site's count is taken, that
 * many nodes stay reachable: the counts are kept (in the output buffer, or
 * on the stack when streaming) and the values follow them exactly, even
 * while other threads record.
 *
 * Built without any instrumentation (CMakeLists.txt, KCOV_NOINSTR): the
 * serialiser must not count, nor trace, itself.
 */
#include <stddef.h>
#include <stdint.h>

#include "kcovprof.h"
#include "kcov/noinstr.h"


#define RAW_MAGIC64   0xFF6C70726F667281ULL /* 0xff "lprofr" 0x81 */
#define RAW_MAGIC32   0xFF6C70726F665281ULL /* 0xff "lprofR" 0x81 */
#define PTRSZ         ((uint32_t)sizeof(void *))
/* The low 32 bits of the version word are the version (LLVM 18+ reserve
 * the high 32 for variants; LLVM 14-17 only the top 8, a subset). */
#define VERSION_OF(w) ((uint32_t)((w) & 0xffffffffULL))

typedef uint64_t kp_u64 __attribute__((may_alias));
typedef uint32_t kp_u32 __attribute__((may_alias));
typedef uint16_t kp_u16 __attribute__((may_alias));
typedef intptr_t kp_iptr __attribute__((may_alias));

/*
 * One data record layout.  Offsets in bytes; IntPtrT fields (CounterPtr,
 * BitmapPtr, FunctionPointer, Values) are pointer-sized.
 *   v8:  NameRef FuncHash CounterPtr FunctionPointer Values NumCounters
 *        NumValueSites[2]
 *   v10: NameRef FuncHash CounterPtr BitmapPtr FunctionPointer Values
 *        NumCounters NumValueSites[3] NumBitmapBytes
 */
struct kp_layout {
	uint32_t version;
	uint32_t rec_size;
	uint32_t hdr_words;
	uint32_t value_kinds; /* IPVK_Last + 1 */
	uint32_t off_cnt_ptr;
	uint32_t off_bits_ptr; /* 0: none */
	uint32_t off_num_cnts;
	uint32_t off_vsites;
	uint32_t off_num_bits; /* 0: none */
	uint32_t off_values;   /* Values: the list heads of the value sites */
};

static const struct kp_layout kp_v8 = {
	.version = 8,
	.rec_size = (24 + 3 * sizeof(void *) + 7) & ~7u,
	.hdr_words = 11,
	.value_kinds = 2,
	.off_cnt_ptr = 16,
	.off_bits_ptr = 0,
	.off_num_cnts = 16 + 3 * sizeof(void *),
	.off_vsites = 20 + 3 * sizeof(void *),
	.off_num_bits = 0,
	.off_values = 16 + 2 * sizeof(void *),
};

static const struct kp_layout kp_v10 = {
	.version = 10,
	.rec_size = (32 + 4 * sizeof(void *) + 7) & ~7u,
	.hdr_words = 16,
	.value_kinds = 3,
	.off_cnt_ptr = 16,
	.off_bits_ptr = 16 + sizeof(void *),
	.off_num_cnts = 16 + 4 * sizeof(void *),
	.off_vsites = 20 + 4 * sizeof(void *),
	.off_num_bits = 28 + 4 * sizeof(void *),
	.off_values = 16 + 3 * sizeof(void *),
};

#define HDR_MAX 16

KCOV_NOINSTR static const struct kp_layout *
kp_layout_of(uint32_t version)
{
	if (version == KCOVPROF_RAW_V8)
		return &kp_v8;
	if (version == KCOVPROF_RAW_V10)
		return &kp_v10;
	return NULL;
}

KCOV_NOINSTR static uint64_t
kp_pad8(uint64_t n)
{
	return (8 - (n & 7)) & 7;
}

KCOV_NOINSTR static uint64_t
kp_span(const void *b, const void *e)
{
	if (b == NULL || e == NULL || (uintptr_t)e <= (uintptr_t)b)
		return 0;
	return (uint64_t)((uintptr_t)e - (uintptr_t)b);
}

KCOV_PUBLIC const char *
kcovprof_strerror(int err)
{
	switch (err) {
	case KCOVPROF_OK:
		return "success";
	case KCOVPROF_EVERSION:
		return "the instrumented code uses a raw profile version this runtime does not write "
		       "(it writes 8 for clang 14-17 and 10 for clang 19-22)";
	case KCOVPROF_EMISMATCH:
		return "the instrumented code was built by another clang than the build expected "
		       "(its raw profile version differs); rebuild it and link it with the same clang";
	case KCOVPROF_ELAYOUT:
		return "the profile sections match no raw profile layout this runtime writes "
		       "(a compiler older than clang 14 or newer than this runtime?)";
	case KCOVPROF_EVARIANT:
		return "the instrumented code uses a profile variant this runtime cannot write "
		       "(profile correlation or temporal profiling)";
	case KCOVPROF_ENOSPC:
		return "the buffer is too small for the profile";
	case KCOVPROF_EWRITE:
		return "writing the profile failed";
	case KCOVPROF_EINCOMPAT:
		return "the profile comes from another binary";
	case KCOVPROF_EFORMAT:
		return "not a raw profile of this layout (truncated or foreign)";
	case KCOVPROF_EINVAL:
		return "invalid argument or unknown module";
	}
	return "unknown error";
}

/* --- Layout detection ------------------------------------------------------ */

/*
 * Whether the data section parses as `l`: a whole number of records, each
 * with counters inside the counters section (and bitmaps inside the bitmap
 * section), as the reader will compute them from the relative pointers.
 */
KCOV_NOINSTR static int
kp_layout_fits(const struct kcovprof_sections *s, const struct kp_layout *l,
    uint32_t csize)
{
	uint64_t dlen = kp_span(s->data_begin, s->data_end);
	uintptr_t cb = (uintptr_t)s->cnts_begin,
	          ce = cb + kp_span(s->cnts_begin, s->cnts_end);
	uintptr_t bb = (uintptr_t)s->bits_begin,
	          be = bb + kp_span(s->bits_begin, s->bits_end);
	uint64_t i, n;

	if (dlen == 0 || dlen % l->rec_size != 0)
		return 0;
	if (l->off_bits_ptr == 0 && be != bb)
		return 0; /* a v8 compiler emits no bitmaps */
	n = dlen / l->rec_size;
	for (i = 0; i < n; i++) {
		const char *r = s->data_begin + i * l->rec_size;
		uint32_t nc = *(const kp_u32 *)(r + l->off_num_cnts);
		uintptr_t c = (uintptr_t)r +
		    (uintptr_t)*(const kp_iptr *)(r + l->off_cnt_ptr);

		if (nc == 0 || c < cb || c >= ce || (c - cb) % csize != 0 ||
		    (uint64_t)nc * csize > ce - c)
			return 0;
		if (l->off_num_bits != 0) {
			uint32_t nb = *(const kp_u32 *)(r + l->off_num_bits);
			uintptr_t b = (uintptr_t)r +
			    (uintptr_t)*(const kp_iptr *)(r + l->off_bits_ptr);

			if (nb != 0 && (b < bb || b >= be || nb > be - b))
				return 0;
		}
	}
	return 1;
}

/* --- Value data ------------------------------------------------------------ */

/* a site count is one byte (INSTR_PROF_MAX_NUM_VAL_PER_SITE) */
#define VP_SITE_MAX 255

KCOV_NOINSTR static uint32_t
kp_sites(const char *r, const struct kp_layout *l, uint32_t kind)
{
	return ((const kp_u16 *)(r + l->off_vsites))[kind];
}

/* A ValueProfRecord without its values: Kind, NumValueSites, the site
 * counts padded to 8. */
KCOV_NOINSTR static uint64_t
kp_vrec_hdr(uint64_t ns)
{
	return (8 + ns + 7) & ~7ULL;
}

/* The value-site list heads of record r, all kinds back to back (NULL if
 * the compiler gave it none). */
KCOV_NOINSTR static struct kcovprof_vnode *const *
kp_heads(const char *r, const struct kp_layout *l)
{
	return *(struct kcovprof_vnode *const *const *)(const void *)(r +
	    l->off_values);
}

/* The values of site j now: its list's length, at most 255. */
KCOV_NOINSTR static uint32_t
kp_site_len(struct kcovprof_vnode *const *heads, uint64_t j)
{
	const struct kcovprof_vnode *v;
	uint32_t n = 0;

	if (heads == NULL)
		return 0;
	for (v = __atomic_load_n(&heads[j], __ATOMIC_ACQUIRE);
	    v != NULL && n < VP_SITE_MAX;
	    v = __atomic_load_n(&v->next, __ATOMIC_ACQUIRE))
		n++;
	return n;
}

/* Bytes of record r's value blob with no values recorded (0: no sites). */
KCOV_NOINSTR static uint64_t
kp_vp_empty_size(const char *r, const struct kp_layout *l)
{
	uint64_t size = 0;
	uint32_t k;

	for (k = 0; k < l->value_kinds; k++)
		if (kp_sites(r, l, k) != 0)
			size += kp_vrec_hdr(kp_sites(r, l, k));
	return size == 0 ? 0 : size + 8; /* + the ValueProfData header */
}

/* Bytes of record r's value blob now. */
KCOV_NOINSTR static uint64_t
kp_vp_size_now(const char *r, const struct kp_layout *l)
{
	struct kcovprof_vnode *const *heads = kp_heads(r, l);
	uint64_t size = kp_vp_empty_size(r, l), base = 0, j;
	uint32_t k;

	for (k = 0; heads != NULL && k < l->value_kinds; k++) {
		uint32_t ns = kp_sites(r, l, k);

		for (j = 0; j < ns; j++)
			size += 16 * (uint64_t)kp_site_len(heads, base + j);
		base += ns;
	}
	return size;
}

/* The first c values of the list at *head, as { Value, Count } pairs. */
KCOV_NOINSTR static int
kp_vp_emit_site(struct kcovprof_vnode *const *head, uint32_t c,
    kcovprof_write_fn fn, void *ctx)
{
	const struct kcovprof_vnode *v =
	    __atomic_load_n(head, __ATOMIC_ACQUIRE);
	uint64_t pairs[2 * 16];
	uint32_t i = 0, k;

	while (i < c) {
		for (k = 0; k < 16 && i < c; k++, i++) {
			/* Never NULL: the list had c nodes and lists only grow. */
			pairs[2 * k] = v != NULL ?
			    __atomic_load_n(&v->value, __ATOMIC_RELAXED) :
			    0;
			pairs[2 * k + 1] = v != NULL ?
			    __atomic_load_n(&v->count, __ATOMIC_RELAXED) :
			    0;
			v = v != NULL ?
			    __atomic_load_n(&v->next, __ATOMIC_ACQUIRE) :
			    NULL;
		}
		if (fn(ctx, pairs, k * 16))
			return 1;
	}
	return 0;
}

/* Record r's value blob through fn, its site counts kept on the stack. */
KCOV_NOINSTR static int
kp_vp_stream(const char *r, const struct kp_layout *l, kcovprof_write_fn fn,
    void *ctx)
{
	uint8_t cnt[KCOVPROF_VP_STREAM_SITES];
	struct kcovprof_vnode *const *heads = kp_heads(r, l);
	uint64_t total = kp_vp_empty_size(r, l), base = 0, j;
	uint32_t k, nk = 0, hdr[2];

	if (total == 0)
		return 0;
	for (k = 0; k < l->value_kinds; k++) {
		uint32_t ns = kp_sites(r, l, k);

		nk += ns != 0;
		for (j = 0; j < ns && base + j < KCOVPROF_VP_STREAM_SITES;
		    j++) {
			cnt[base + j] = (uint8_t)kp_site_len(heads, base + j);
			total += 16 * (uint64_t)cnt[base + j];
		}
		base += ns;
	}
	hdr[0] = (uint32_t)total;
	hdr[1] = nk;
	if (fn(ctx, hdr, 8))
		return 1;
	base = 0;
	for (k = 0; k < l->value_kinds; k++) {
		uint32_t ns = kp_sites(r, l, k);
		uint64_t kept = base >= KCOVPROF_VP_STREAM_SITES ?
		    0 :
		    ns < KCOVPROF_VP_STREAM_SITES - base ?
		    ns :
		    KCOVPROF_VP_STREAM_SITES - base;

		if (ns == 0)
			continue;
		hdr[0] = k;
		hdr[1] = ns;
		if (fn(ctx, hdr, 8) ||
		    (kept != 0 && fn(ctx, cnt + base, kept)) ||
		    fn(ctx, NULL, kp_vrec_hdr(ns) - 8 - kept))
			return 1;
		for (j = 0; j < kept; j++)
			if (cnt[base + j] != 0 &&
			    kp_vp_emit_site(&heads[base + j], cnt[base + j], fn,
			        ctx))
				return 1;
		base += ns;
	}
	return 0;
}

KCOV_NOINSTR static uint64_t
kp_bid_block(const struct kcovprof_module *m)
{
	if (m->build_id_len == 0)
		return 0;
	return 8 + m->build_id_len + kp_pad8(m->build_id_len);
}

KCOV_PUBLIC int
kcovprof_module_init(struct kcovprof_module *m)
{
	const struct kcovprof_sections *s;
	const struct kp_layout *l = NULL;
	uint64_t word = 0, i, cbytes;
	uint32_t csize = 8, v;
	int err = KCOVPROF_OK;

	if (m == NULL || m->abi != KCOVPROF_MODULE_ABI ||
	    m->build_id_len > KCOVPROF_BUILD_ID_MAX)
		return KCOVPROF_EINVAL;
	s = &m->sec;
	m->version = 0;
	m->record_size = 0;
	m->counter_size = 0;
	m->num_data = m->num_counters = m->num_bitmap_bytes = m->names_size = 0;
	m->vp_size = m->size = 0;

	if (m->raw_version_var != NULL) {
		word = *m->raw_version_var;
		v = VERSION_OF(word);
		if (word &
		    (KCOVPROF_VARIANT_DBG_CORRELATE |
		        KCOVPROF_VARIANT_TEMPORAL))
			err = KCOVPROF_EVARIANT;
		else if (kp_layout_of(v) == NULL)
			err = KCOVPROF_EVERSION;
		else if (m->expect != 0 && m->expect != v)
			err = KCOVPROF_EMISMATCH;
		if (word & KCOVPROF_VARIANT_BYTE_COVERAGE)
			csize = 1;
	} else {
		v = m->expect;
		if (v != 0 && kp_layout_of(v) == NULL)
			err = KCOVPROF_EVERSION;
		word = v;
	}
	if (err != KCOVPROF_OK) {
		m->version = word;
		return m->status = err;
	}

	if (kp_span(s->data_begin, s->data_end) == 0) {
		/* Nothing instrumented in this image (kcov-build links the stub
		 * into every image it links): a valid, empty profile. */
		l = kp_layout_of(v != 0 ? v : KCOVPROF_RAW_V10);
		word = word != 0 ? word : l->version;
	} else if (v != 0) {
		l = kp_layout_of(v);
		if (!kp_layout_fits(s, l, csize)) {
			const struct kp_layout *o =
			    l == &kp_v8 ? &kp_v10 : &kp_v8;

			m->version = word;
			return m->status = kp_layout_fits(s, o, csize) ?
			    KCOVPROF_EMISMATCH :
			    KCOVPROF_ELAYOUT;
		}
	} else {
		int f8 = kp_layout_fits(s, &kp_v8, csize),
		    f10 = kp_layout_fits(s, &kp_v10, csize);

		if (f8 == f10)
			/* neither, or (never seen) both */
			return m->status = KCOVPROF_ELAYOUT;
		l = f8 ? &kp_v8 : &kp_v10;
		word = l->version;
	}

	m->version = word;
	m->record_size = l->rec_size;
	m->counter_size = csize;
	m->num_data = kp_span(s->data_begin, s->data_end) / l->rec_size;
	m->num_counters =
	    (kp_span(s->cnts_begin, s->cnts_end) + csize - 1) / csize;
	m->num_bitmap_bytes =
	    l->off_num_bits != 0 ? kp_span(s->bits_begin, s->bits_end) : 0;
	m->names_size = kp_span(s->names_begin, s->names_end);
	for (i = 0; i < m->num_data; i++)
		m->vp_size +=
		    kp_vp_empty_size(s->data_begin + i * l->rec_size, l);
	cbytes = m->num_counters * csize;
	m->size = l->hdr_words * 8 + kp_bid_block(m) +
	    m->num_data * l->rec_size + cbytes + kp_pad8(cbytes) +
	    m->names_size + kp_pad8(m->names_size) + m->vp_size;
	if (l->off_num_bits != 0)
		m->size += m->num_bitmap_bytes + kp_pad8(m->num_bitmap_bytes);
	return m->status = KCOVPROF_OK;
}

/* --- Serialisation -------------------------------------------------------- */

KCOV_NOINSTR static const struct kp_layout *
kp_ready(const struct kcovprof_module *m)
{
	if (m == NULL || m->abi != KCOVPROF_MODULE_ABI ||
	    m->status != KCOVPROF_OK)
		return NULL;
	return kp_layout_of(VERSION_OF(m->version));
}

KCOV_NOINSTR static uint32_t
kp_header(const struct kcovprof_module *m, const struct kp_layout *l,
    uint64_t *h)
{
	const struct kcovprof_sections *s = &m->sec;
	uint64_t cbytes = m->num_counters * m->counter_size;
	uint64_t ddelta =
	    (uint64_t)((uintptr_t)s->cnts_begin - (uintptr_t)s->data_begin);
	uint32_t n = 0;

	h[n++] = sizeof(void *) == 8 ? RAW_MAGIC64 : RAW_MAGIC32;
	h[n++] = m->version;
	h[n++] = kp_bid_block(m);
	h[n++] = m->num_data;
	h[n++] = 0; /* PaddingBytesBeforeCounters (continuous mode only) */
	h[n++] = m->num_counters;
	h[n++] = kp_pad8(cbytes); /* PaddingBytesAfterCounters */
	if (l->version >= 10) {
		h[n++] = m->num_bitmap_bytes;
		h[n++] = kp_pad8(m->num_bitmap_bytes);
	}
	h[n++] = m->names_size;
	h[n++] = ddelta; /* CountersDelta: counters - data */
	if (l->version >= 10)
		h[n++] = (uint64_t)((uintptr_t)s->bits_begin -
		    (uintptr_t)s->data_begin);
	/* NamesDelta: only sanity-checked */
	h[n++] = (uint64_t)(uintptr_t)s->names_begin;
	if (l->version >= 10) {
		h[n++] = 0; /* NumVTables */
		h[n++] = 0; /* VNamesSize */
	}
	h[n++] = l->value_kinds - 1; /* ValueKindLast */
	return n;
}

KCOV_PUBLIC int64_t
kcovprof_size(const struct kcovprof_module *m)
{
	const struct kp_layout *l = kp_ready(m);
	uint64_t size, i;

	if (m == NULL || m->abi != KCOVPROF_MODULE_ABI)
		return KCOVPROF_EINVAL;
	if (m->status != KCOVPROF_OK || l == NULL)
		return m->status != KCOVPROF_OK ? m->status : KCOVPROF_EINVAL;
	size = m->size - m->vp_size;
	for (i = 0; m->vp_size != 0 && i < m->num_data; i++)
		size += kp_vp_size_now(m->sec.data_begin + i * l->rec_size, l);
	return (int64_t)size;
}

#define CHUNK 32 /* counters copied per call of the sink */

/* Everything up to the value data. */
KCOV_NOINSTR static int
kp_write_fixed(const struct kcovprof_module *m, const struct kp_layout *l,
    kcovprof_write_fn fn, void *ctx)
{
	const struct kcovprof_sections *s = &m->sec;
	uint64_t h[HDR_MAX], i, j, n;
	uint32_t hw;

	hw = kp_header(m, l, h);
	if (fn(ctx, h, hw * 8))
		return KCOVPROF_EWRITE;
	if (m->build_id_len != 0) {
		uint64_t len = m->build_id_len;

		if (fn(ctx, &len, 8) || fn(ctx, m->build_id, m->build_id_len) ||
		    fn(ctx, NULL, kp_pad8(len)))
			return KCOVPROF_EWRITE;
	}
	if (m->num_data != 0 &&
	    fn(ctx, s->data_begin, m->num_data * l->rec_size))
		return KCOVPROF_EWRITE;

	/* Counters: one single-copy-atomic load each, so a counter being
	 * incremented by another thread is read whole, old or new. */
	n = m->num_counters;
	if (m->counter_size == 8) {
		const uint64_t *c = (const uint64_t *)(void *)s->cnts_begin;
		uint64_t tmp[CHUNK];

		for (i = 0; i < n; i += j) {
			for (j = 0; j < CHUNK && i + j < n; j++)
				tmp[j] = __atomic_load_n(&c[i + j],
				    __ATOMIC_RELAXED);
			if (fn(ctx, tmp, j * 8))
				return KCOVPROF_EWRITE;
		}
	} else {
		const uint8_t *c = (const uint8_t *)s->cnts_begin;
		uint8_t tmp[CHUNK * 8];

		for (i = 0; i < n; i += j) {
			for (j = 0; j < sizeof(tmp) && i + j < n; j++)
				tmp[j] = __atomic_load_n(&c[i + j],
				    __ATOMIC_RELAXED);
			if (fn(ctx, tmp, j))
				return KCOVPROF_EWRITE;
		}
	}
	if (fn(ctx, NULL, kp_pad8(n * m->counter_size)))
		return KCOVPROF_EWRITE;

	if (l->version >= 10) {
		const uint8_t *b = (const uint8_t *)s->bits_begin;
		uint8_t tmp[CHUNK * 8];

		n = m->num_bitmap_bytes;
		for (i = 0; i < n; i += j) {
			for (j = 0; j < sizeof(tmp) && i + j < n; j++)
				tmp[j] = __atomic_load_n(&b[i + j],
				    __ATOMIC_RELAXED);
			if (fn(ctx, tmp, j))
				return KCOVPROF_EWRITE;
		}
		if (fn(ctx, NULL, kp_pad8(n)))
			return KCOVPROF_EWRITE;
	}

	if (m->names_size != 0 && fn(ctx, s->names_begin, m->names_size))
		return KCOVPROF_EWRITE;
	if (fn(ctx, NULL, kp_pad8(m->names_size)))
		return KCOVPROF_EWRITE;
	return KCOVPROF_OK;
}

KCOV_PUBLIC int
kcovprof_write(const struct kcovprof_module *m, kcovprof_write_fn fn, void *ctx)
{
	const struct kp_layout *l = kp_ready(m);
	uint64_t i;
	int err;

	if (l == NULL || fn == NULL)
		return m != NULL && m->status != KCOVPROF_OK ? m->status :
		                                               KCOVPROF_EINVAL;
	err = kp_write_fixed(m, l, fn, ctx);
	if (err != KCOVPROF_OK)
		return err;
	/* One ValueProfData per record with value sites, as the reader expects. */
	for (i = 0; m->vp_size != 0 && i < m->num_data; i++)
		if (kp_vp_stream(m->sec.data_begin + i * l->rec_size, l, fn,
		        ctx))
			return KCOVPROF_EWRITE;
	return KCOVPROF_OK;
}

struct kp_buf {
	uint8_t *p;
	size_t left;
};

KCOV_NOINSTR static int
kp_buf_write(void *ctx, const void *data, size_t len)
{
	struct kp_buf *b = ctx;
	const uint8_t *d = data;
	size_t i;

	if (len > b->left)
		return 1;
	if (d == NULL) {
		for (i = 0; i < len; i++)
			b->p[i] = 0;
	} else {
		for (i = 0; i < len; i++)
			b->p[i] = d[i];
	}
	b->p += len;
	b->left -= len;
	return 0;
}

/*
 * Record r's value blob into b, each site count taken once and stored where
 * it belongs in the output, then that many values written: consistent
 * whatever other threads record meanwhile, for any number of sites.
 */
KCOV_NOINSTR static int
kp_vp_buffer(const char *r, const struct kp_layout *l, struct kp_buf *b)
{
	struct kcovprof_vnode *const *heads = kp_heads(r, l);
	uint8_t *start = b->p;
	uint64_t base = 0, j;
	uint32_t k, nk = 0;

	if (kp_vp_empty_size(r, l) == 0)
		return 0;
	if (kp_buf_write(b, NULL, 8))
		return 1;
	for (k = 0; k < l->value_kinds; k++) {
		uint32_t ns = kp_sites(r, l, k), hdr[2] = { k, ns };
		uint8_t *cnt;

		if (ns == 0)
			continue;
		nk++;
		if (kp_buf_write(b, hdr, 8))
			return 1;
		cnt = b->p;
		if (kp_buf_write(b, NULL, kp_vrec_hdr(ns) - 8))
			return 1;
		for (j = 0; j < ns; j++)
			cnt[j] = (uint8_t)kp_site_len(heads, base + j);
		for (j = 0; j < ns; j++)
			if (cnt[j] != 0 &&
			    kp_vp_emit_site(&heads[base + j], cnt[j],
			        kp_buf_write, b))
				return 1;
		base += ns;
	}
	((kp_u32 *)(void *)start)[0] = (uint32_t)(b->p - start);
	((kp_u32 *)(void *)start)[1] = nk;
	return 0;
}

KCOV_PUBLIC int64_t
kcovprof_write_buffer(const struct kcovprof_module *m, void *buf, size_t cap)
{
	const struct kp_layout *l = kp_ready(m);
	struct kp_buf b = { buf, cap };
	uint64_t i;
	int err;

	if (l == NULL)
		return m != NULL && m->abi == KCOVPROF_MODULE_ABI &&
		        m->status != KCOVPROF_OK ?
		    m->status :
		    KCOVPROF_EINVAL;
	if (buf == NULL || m->size > cap)
		return KCOVPROF_ENOSPC;
	err = kp_write_fixed(m, l, kp_buf_write, &b);
	if (err != KCOVPROF_OK)
		return err == KCOVPROF_EWRITE ? KCOVPROF_ENOSPC : err;
	for (i = 0; m->vp_size != 0 && i < m->num_data; i++)
		if (kp_vp_buffer(m->sec.data_begin + i * l->rec_size, l, &b))
			return KCOVPROF_ENOSPC;
	return (int64_t)(cap - b.left);
}

KCOV_PUBLIC int
kcovprof_reset(struct kcovprof_module *m)
{
	const struct kp_layout *l = kp_ready(m);
	uint64_t i;

	if (l == NULL)
		return m != NULL && m->status != KCOVPROF_OK ? m->status :
		                                               KCOVPROF_EINVAL;
	if (m->counter_size == 8) {
		uint64_t *c = (uint64_t *)(void *)m->sec.cnts_begin;

		for (i = 0; i < m->num_counters; i++)
			__atomic_store_n(&c[i], 0, __ATOMIC_RELAXED);
	} else {
		/* Single-byte coverage: 0 means "covered", the idle value is 0xff. */
		for (i = 0; i < m->num_counters; i++)
			__atomic_store_n((uint8_t *)&m->sec.cnts_begin[i], 0xff,
			    __ATOMIC_RELAXED);
	}
	for (i = 0; i < m->num_bitmap_bytes; i++)
		__atomic_store_n((uint8_t *)&m->sec.bits_begin[i], 0,
		    __ATOMIC_RELAXED);
	/* Value counts: zeroed, the values kept (compiler-rt's reset). */
	for (i = 0; m->vp_size != 0 && i < m->num_data; i++) {
		const char *r = m->sec.data_begin + i * l->rec_size;
		struct kcovprof_vnode *const *heads = kp_heads(r, l);
		uint64_t ns = 0, j;
		uint32_t k;

		for (k = 0; k < l->value_kinds; k++)
			ns += kp_sites(r, l, k);
		for (j = 0; heads != NULL && j < ns; j++) {
			struct kcovprof_vnode *v;

			for (v = __atomic_load_n(&heads[j], __ATOMIC_ACQUIRE);
			    v != NULL;
			    v = __atomic_load_n(&v->next, __ATOMIC_ACQUIRE))
				__atomic_store_n(&v->count, 0,
				    __ATOMIC_RELAXED);
		}
	}
	return KCOVPROF_OK;
}

/* --- Merging a profile read back from a file -------------------------------- */

/*
 * Record `value` seen `count` times into the n pairs of one site at `site`,
 * as value.c records into a list (and compiler-rt's lprofMergeValueProfData
 * into the running image): add to a known value; append a new one while
 * the site has room and the pool has nodes (*budget); on a full site,
 * replace or wear down the first least-counted value.  `room`: whether a
 * pair may be appended in the output.  Returns 1 if out of room.
 */
KCOV_NOINSTR static int
kp_merge_value(uint8_t *site, uint32_t *n, uint64_t value, uint64_t count,
    uint32_t max, uint64_t *budget, int room)
{
	kp_u64 *pair = (kp_u64 *)(void *)site, *min = NULL;
	uint64_t min_count = UINT64_MAX;
	uint32_t i;

	if (count == 0)
		return 0;
	for (i = 0; i < *n; i++, pair += 2) {
		if (pair[0] == value) {
			pair[1] += count;
			return 0;
		}
		if (pair[1] < min_count) {
			min_count = pair[1];
			min = pair;
		}
	}
	if (*n >= max) {
		if (min == NULL)
			return 0;
		if (min_count <= count) {
			min[0] = value;
			min[1] = count;
		} else {
			min[1] -= count;
		}
		return 0;
	}
	if (*budget == 0)
		return 0; /* the pool ran out: compiler-rt drops it too */
	if (!room)
		return 1;
	(*budget)--;
	pair[0] = value;
	pair[1] = count;
	(*n)++;
	return 0;
}

/*
 * The bounds of one ValueProfData blob at `off` of a buffer of `len` bytes
 * for record r: its size, or 0 if malformed.  Each kind's record is checked
 * against r's value sites; *vals[k] gets the offset of kind k's record.
 */
KCOV_NOINSTR static uint64_t
kp_vp_parse(const uint8_t *buf, uint64_t len, uint64_t off, const char *r,
    const struct kp_layout *l, uint64_t *krec)
{
	uint64_t total, pos, j, nv;
	uint32_t k, nk = 0;

	for (k = 0; k < l->value_kinds; k++)
		nk += kp_sites(r, l, k) != 0;
	if (off > len || len - off < 8)
		return 0;
	total = ((const kp_u32 *)(const void *)(buf + off))[0];
	if (total < 8 || total % 8 != 0 || total > len - off ||
	    ((const kp_u32 *)(const void *)(buf + off))[1] != nk)
		return 0;
	pos = off + 8;
	for (k = 0; k < l->value_kinds; k++) {
		uint32_t ns = kp_sites(r, l, k);
		const kp_u32 *h = (const kp_u32 *)(const void *)(buf + pos);

		if (ns == 0)
			continue;
		if (off + total - pos < kp_vrec_hdr(ns) || h[0] != k ||
		    h[1] != ns)
			return 0;
		krec[k] = pos;
		for (j = 0, nv = 0; j < ns; j++)
			nv += buf[pos + 8 + j];
		pos += kp_vrec_hdr(ns);
		if (off + total - pos < 16 * nv)
			return 0;
		pos += 16 * nv;
	}
	return pos == off + total ? total : 0;
}

KCOV_PUBLIC int64_t
kcovprof_merge(const struct kcovprof_module *m, const void *dst, size_t dst_len,
    const void *src, size_t src_len, void *out, size_t out_cap)
{
	const struct kp_layout *l = kp_ready(m);
	const uint8_t *sb = src, *db = dst;
	uint8_t *ob = out;
	const kp_u64 *sh = src, *dh = dst;
	uint64_t off, i, j, fixed, cnt_off, bits_off, dp, sp, op, budget;
	uint32_t hw, w, k, max;

	if (l == NULL || dst == NULL || src == NULL || out == NULL)
		return KCOVPROF_EINVAL;
	fixed = m->size - m->vp_size; /* everything before the value data */
	if (dst_len < fixed)
		return KCOVPROF_EINVAL;
	hw = l->hdr_words;
	if (src_len < hw * 8 || sh[0] != dh[0] ||
	    VERSION_OF(sh[1]) != l->version)
		return KCOVPROF_EFORMAT;
	/* Every header word but the three addresses (CountersDelta, BitmapDelta,
	 * NamesDelta: the same binary may load elsewhere) must be equal. */
	for (w = 0; w < hw; w++) {
		int addr = l->version >= 10 ? (w == 10 || w == 11 || w == 12) :
		                              (w == 8 || w == 9);

		if (!addr && sh[w] != dh[w])
			return KCOVPROF_EINCOMPAT;
	}
	if (src_len < fixed)
		/* the same header, fewer bytes: truncated */
		return KCOVPROF_EFORMAT;
	off = hw * 8;
	for (i = 0; i < kp_bid_block(m); i++)
		if (sb[off + i] != db[off + i])
			return KCOVPROF_EINCOMPAT;
	off += kp_bid_block(m);
	for (i = 0; i < m->num_data; i++) {
		const uint8_t *a = sb + off + i * l->rec_size,
		              *b = db + off + i * l->rec_size;

		/* NameRef, FuncHash, NumCounters and (v10) NumBitmapBytes. */
		if (*(const kp_u64 *)a != *(const kp_u64 *)b ||
		    *(const kp_u64 *)(a + 8) != *(const kp_u64 *)(b + 8) ||
		    *(const kp_u32 *)(a + l->off_num_cnts) !=
		        *(const kp_u32 *)(b + l->off_num_cnts) ||
		    (l->off_num_bits != 0 &&
		        *(const kp_u32 *)(a + l->off_num_bits) !=
		            *(const kp_u32 *)(b + l->off_num_bits)))
			return KCOVPROF_EINCOMPAT;
		for (k = 0; k < l->value_kinds; k++)
			if (kp_sites((const char *)a, l, k) !=
			    kp_sites((const char *)b, l, k))
				return KCOVPROF_EINCOMPAT;
	}
	if (out_cap < fixed)
		return KCOVPROF_ENOSPC;
	for (i = 0; i < fixed; i++)
		ob[i] = db[i];
	cnt_off = off + m->num_data * l->rec_size;
	bits_off = cnt_off + m->num_counters * m->counter_size +
	    kp_pad8(m->num_counters * m->counter_size);
	if (m->counter_size == 8) {
		for (i = 0; i < m->num_counters; i++)
			((kp_u64 *)(void *)(ob + cnt_off))[i] +=
			    ((const kp_u64 *)(const void *)(sb + cnt_off))[i];
	} else {
		for (i = 0; i < m->num_counters; i++)
			ob[cnt_off + i] &= sb[cnt_off + i];
	}
	for (i = 0; i < m->num_bitmap_bytes; i++)
		ob[bits_off + i] |= sb[bits_off + i];

	/* Value data: dst's values of each site, then src's recorded into them. */
	budget = UINT64_MAX;
	if (m->vpool != NULL) {
		/* kcovprof_vpool_free(), without a call into value.c */
		uintptr_t cur = (uintptr_t)__atomic_load_n(&m->vpool->cur,
		    __ATOMIC_RELAXED);
		uintptr_t end = (uintptr_t)m->vpool->end;

		budget =
		    cur < end ? (end - cur) / sizeof(struct kcovprof_vnode) : 0;
	}
	max = m->vpool != NULL ? m->vpool->max_per_site : KCOVPROF_VP_PER_SITE;
	dp = sp = op = fixed;
	for (i = 0; m->vp_size != 0 && i < m->num_data; i++) {
		const char *r = (const char *)db + off + i * l->rec_size;
		uint64_t dk[4], sk[4], dtot, stot, ostart = op;
		uint32_t nk = 0;

		if (kp_vp_empty_size(r, l) == 0)
			continue;
		dtot = kp_vp_parse(db, dst_len, dp, r, l, dk);
		stot = kp_vp_parse(sb, src_len, sp, r, l, sk);
		if (dtot == 0)
			return KCOVPROF_EINVAL;
		if (stot == 0)
			return KCOVPROF_EFORMAT;
		if (out_cap - op < 8)
			return KCOVPROF_ENOSPC;
		op += 8;
		for (k = 0; k < l->value_kinds; k++) {
			uint32_t ns = kp_sites(r, l, k);
			const uint8_t *dc, *sc;
			const uint8_t *dv, *sv;
			uint8_t *oc;

			if (ns == 0)
				continue;
			nk++;
			if (out_cap - op < kp_vrec_hdr(ns))
				return KCOVPROF_ENOSPC;
			((kp_u32 *)(void *)(ob + op))[0] = k;
			((kp_u32 *)(void *)(ob + op))[1] = ns;
			oc = ob + op + 8;
			for (j = 8; j < kp_vrec_hdr(ns); j++)
				ob[op + j] = 0;
			op += kp_vrec_hdr(ns);
			dc = db + dk[k] + 8;
			sc = sb + sk[k] + 8;
			dv = db + dk[k] + kp_vrec_hdr(ns);
			sv = sb + sk[k] + kp_vrec_hdr(ns);
			for (j = 0; j < ns; j++) {
				uint8_t *site = ob + op;
				uint32_t n = dc[j], v;

				if (out_cap - op < 16 * (uint64_t)n)
					return KCOVPROF_ENOSPC;
				for (v = 0; v < 16 * n; v++)
					site[v] = dv[v];
				dv += 16 * n;
				for (v = 0; v < sc[j]; v++, sv += 16) {
					const kp_u64 *pair =
					    (const kp_u64 *)(const void *)sv;

					if (kp_merge_value(site, &n, pair[0],
					        pair[1], max, &budget,
					        out_cap - op -
					                16 * (uint64_t)n >=
					            16))
						return KCOVPROF_ENOSPC;
				}
				oc[j] = (uint8_t)n;
				op += 16 * (uint64_t)n;
			}
		}
		((kp_u32 *)(void *)(ob + ostart))[0] = (uint32_t)(op - ostart);
		((kp_u32 *)(void *)(ob + ostart))[1] = nk;
		dp += dtot;
		sp += stot;
	}
	if (sp != src_len)
		/* bytes after the profile: not one image's file */
		return KCOVPROF_EFORMAT;
	return (int64_t)op;
}

KCOV_PUBLIC uint64_t
kcovprof_signature(const struct kcovprof_module *m)
{
	/*
	 * compiler-rt's lprofGetLoadModuleSignature (InstrProfilingMerge.c).
	 * Its NumVnodes counts __llvm_prf_vnds, where compiler-rt always puts
	 * its own static pool of 1024 value nodes (InstrProfilingValue.c; 0x6000
	 * bytes in images linked by clang-14, -16 and -19), as module.c does:
	 * %m then names files as compiler-rt does, so a process tree mixing
	 * both runtimes merges into the same files.
	 */
	uint64_t vnodes, first;

	if (m == NULL)
		return 0;
	/*
	 * compiler-rt takes NumVnodes as a pointer difference, which the
	 * compiler computes as an exact division (C says it is one): on x86-64,
	 * bytes / 8 times the inverse of 3 modulo 2^64.  When alignment padding
	 * leaves the section a non-multiple of 24 bytes (lz4's: 0x71f0) that is
	 * not bytes / 24 but a large number, and %m's names depend on it.
	 */
	vnodes = kp_span(m->sec.vnds_begin, m->sec.vnds_end);
	vnodes = sizeof(struct kcovprof_vnode) == 24 ?
	    (vnodes >> 3) * 0xAAAAAAAAAAAAAAABULL :
	    vnodes / sizeof(struct kcovprof_vnode);
	first = m->num_data > 0 ? *(const kp_u64 *)m->sec.data_begin : 0;
	return (m->names_size << 40) + (m->num_counters << 30) +
	    (m->num_data << 20) + (vnodes << 10) + first + m->version +
	    (sizeof(void *) == 8 ? RAW_MAGIC64 : RAW_MAGIC32);
}
