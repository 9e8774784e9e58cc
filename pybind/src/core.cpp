// _core: the private extension under the `kcov` package.
//
// It exposes the hosted device (kcovrt_*), plain ioctl/mmap on real device
// nodes, and a Mapping object that owns a mapped kcov buffer.  numpy views
// are built with the Mapping as their base, so they never copy and the
// memory stays mapped while any view exists.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kcovrt.h"

namespace py = pybind11;

namespace {

[[noreturn]] void raise_errno(int err, const char *what) {
  PyErr_SetObject(PyExc_OSError,
                  py::make_tuple(err, std::string(what) + ": " + std::strerror(err))
                      .ptr());
  throw py::error_already_set();
}

// A mapped kcov buffer.  munmap() runs when the last reference goes: the
// Python owner and every numpy view hold one.
class Mapping {
 public:
  Mapping(void *addr, size_t length, bool writable)
      : addr_(static_cast<uint64_t *>(addr)), length_(length), writable_(writable) {}
  ~Mapping() {
    if (addr_ != nullptr) munmap(addr_, length_);
  }
  Mapping(const Mapping &) = delete;
  Mapping &operator=(const Mapping &) = delete;

  uint64_t *words() const { return addr_; }
  size_t length() const { return length_; }
  size_t nwords() const { return length_ / 8; }
  bool writable() const { return writable_; }

 private:
  uint64_t *addr_;
  size_t length_;
  bool writable_;
};

uint64_t load_count(const Mapping &m) {
  return __atomic_load_n(&m.words()[0], __ATOMIC_ACQUIRE);
}

// A read-only uint64 view of `n` words starting at word `first`, based on
// the Mapping object so that no copy is made.
py::array view_words(py::object owner, size_t first, size_t n) {
  Mapping &m = owner.cast<Mapping &>();
  if (first + n > m.nwords()) throw py::value_error("view beyond the mapping");
  py::array_t<uint64_t> arr({static_cast<py::ssize_t>(n)}, {static_cast<py::ssize_t>(8)},
                            m.words() + first, owner);
  py::detail::array_proxy(arr.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
  return std::move(arr);
}

py::tuple mapping_result(void *p, size_t length, int prot) {
  if (p == MAP_FAILED) return py::make_tuple(errno, py::none());
  py::object obj = py::cast(new Mapping(p, length, (prot & PROT_WRITE) != 0),
                            py::return_value_policy::take_ownership);
  return py::make_tuple(0, obj);
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "Private extension of the kcov package; use the kcov API instead.";

  m.attr("ABI_FREEBSD") = KCOVRT_ABI_FREEBSD;
  m.attr("ABI_LINUX") = KCOVRT_ABI_LINUX;
  m.attr("ABI_NETBSD") = KCOVRT_ABI_NETBSD;
  m.attr("ABI_OPENBSD") = KCOVRT_ABI_OPENBSD;
  m.attr("PAGE_SIZE") = sysconf(_SC_PAGESIZE);

  py::class_<Mapping>(m, "Mapping")
      .def_property_readonly("length", &Mapping::length)
      .def_property_readonly("nwords", &Mapping::nwords)
      .def_property_readonly("writable", &Mapping::writable)
      .def_property_readonly("address",
                             [](const Mapping &mp) { return reinterpret_cast<uintptr_t>(mp.words()); })
      .def("count", &load_count, "Word 0 as stored (not clamped).")
      .def("set_count",
           [](Mapping &mp, uint64_t v) {
             if (!mp.writable()) throw py::value_error("mapping is read-only");
             __atomic_store_n(&mp.words()[0], v, __ATOMIC_RELEASE);
           })
      .def("word", [](const Mapping &mp, size_t i) {
        if (i >= mp.nwords()) throw py::index_error("word index out of range");
        return __atomic_load_n(&mp.words()[i], __ATOMIC_RELAXED);
      })
      .def("set_word", [](Mapping &mp, size_t i, uint64_t v) {
        if (!mp.writable()) throw py::value_error("mapping is read-only");
        if (i >= mp.nwords()) throw py::index_error("word index out of range");
        __atomic_store_n(&mp.words()[i], v, __ATOMIC_RELAXED);
      });

  m.def("view_words", &view_words, py::arg("mapping"), py::arg("first"), py::arg("n"),
        "Read-only zero-copy uint64 view of words [first, first+n) of a Mapping.");

  // --- hosted device --------------------------------------------------
  m.def("hosted_open", [](int personality, bool cloexec) {
    int fd = kcovrt_open(cloexec ? O_CLOEXEC : 0, personality);
    if (fd < 0) raise_errno(errno, "kcovrt_open");
    return fd;
  }, py::arg("personality"), py::arg("cloexec") = true);
  m.def("hosted_ioctl", [](int fd, unsigned long cmd, uintptr_t arg) {
    if (kcovrt_ioctl(fd, cmd, arg) != 0) return errno;
    return 0;
  }, "Returns 0 or the errno.");
  m.def("hosted_close", [](int fd) {
    if (kcovrt_close(fd) != 0) raise_errno(errno, "close");
  });
  m.def("hosted_is_kcov", [](int fd) { return kcovrt_is_kcov(fd) != 0; });
  m.def("hosted_reset", [](int fd) {
    if (kcovrt_reset(fd) != 0) raise_errno(errno, "kcovrt_reset");
  });
  m.def("hosted_info", [](int fd) {
    struct kcovrt_info in;
    if (kcovrt_info(fd, &in) != 0) raise_errno(errno, "kcovrt_info");
    py::dict d;
    d["state"] = in.state;
    d["abi"] = in.abi;
    d["personality"] = in.personality;
    d["mode"] = in.mode;
    d["running"] = in.running != 0;
    d["orphaned"] = in.orphaned != 0;
    d["entries"] = in.entries;
    d["bufsize"] = in.bufsize;
    d["count"] = in.count;
    d["capacity"] = in.capacity;
    d["dropped"] = in.dropped;
    d["owner_tid"] = in.owner_tid;
    return d;
  });
  m.def("hosted_mmap", [](int fd, size_t length, int prot, int flags, long offset) {
    void *p = kcovrt_mmap(nullptr, length, prot, flags, fd, offset);
    return mapping_result(p, length, prot);
  }, "Returns (errno, Mapping or None).");

  // --- real device nodes ----------------------------------------------
  m.def("dev_ioctl", [](int fd, unsigned long cmd, uintptr_t arg) {
    int r;
    {
      py::gil_scoped_release nogil;
      r = ioctl(fd, cmd, arg);
    }
    return r != 0 ? errno : 0;
  }, "ioctl with the argument passed by value; returns 0 or the errno.");
  m.def("dev_mmap", [](int fd, size_t length, int prot, int flags, long offset) {
    void *p = mmap(nullptr, length, prot, flags, fd, offset);
    return mapping_result(p, length, prot);
  }, "Returns (errno, Mapping or None).");
  m.def("version", []() { return std::string(kcovrt_version()); });
}
