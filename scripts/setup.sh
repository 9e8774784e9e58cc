#!/usr/bin/env bash
# Idempotent set-up on Debian 12: system packages, the venv in .venv/, and
# the project installed into it.  Safe to run again; it only installs what
# is missing and rebuilds the package (incrementally, in build/).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential gcc-12 g++-12 make git pkg-config
  clang-19 llvm-19 lld-19 clang-14 llvm-14
  # source-based coverage (tests/profile): every clang of Debian 12 with its
  # llvm-profdata/llvm-cov, and compiler-rt's profile runtime as the reference
  clang-16 llvm-16 libclang-rt-14-dev libclang-rt-16-dev libclang-rt-19-dev
  clang-tools-19  # sancov-19, which reads our .sancov files
  clang-format-19  # make check: runtime/ against .clang-format
  python3 python3-venv python3-dev
  binutils valgrind
  # kcov-build's tests: upstream builds (cmake/ninja come from the venv)
  # and kbuild against the stock kernel's headers
  linux-headers-amd64
  # whole kernel builds (kcov-build kernel) from Debian's kernel source
  linux-source-6.1 flex bison bc libelf-dev libssl-dev cpio kmod rsync xz-utils
  # the VM harness: the stock kernel under qemu (TCG) via virtme-ng
  linux-image-amd64 qemu-system-x86 busybox-static udev
  # kcov.report's format tests: genhtml reads our lcov, headless Chromium
  # opens our HTML report
  lcov chromium
)

log() { printf '[setup] %s\n' "$*"; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# One dpkg-query for all: the packages installed, then what is not among them.
installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${APT_PACKAGES[@]}" 2>/dev/null \
  | awk '$NF == "installed" && $(NF-1) == "ok" {print $1}' || true)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  if ! grep -qxF "$p" <<<"$installed"; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "Debian packages present"
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  log "creating .venv with $($PY --version)"
  $PY -m venv .venv
fi

# Build and test requirements, pinned below the next major version.
REQS=(
  "pip>=23" "scikit-build-core>=0.10,<2" "pybind11>=2.12,<4" "cmake>=3.18" "ninja>=1.10"
  "numpy>=1.22,<3" "pytest>=7,<10" "pyelftools>=0.29,<1"
  # source analysis (kcov-build inventory/check, --analyze): bundles libclang.so
  "libclang==18.1.1"
  # the VM harness (tests/vm): boots kernels over the host's file system
  "virtme-ng==1.42"
  # model-based tests and fuzzing (tests/reliability)
  "hypothesis==6.*"
  # make check and make test run their folders on every core (tests/conftest.py)
  "pytest-xdist==3.*"
  # kcov.report's format tests: Cobertura XML checked against its DTD
  "lxml==5.*"
  "Jinja2>=3.0,<4"  # kcov.report's HTML writer (a runtime dependency, see pyproject.toml)
  # make check's linters (configured in pyproject.toml)
  "ruff>=0.6,<1" "mypy>=1.11,<3"
)
stamp=.venv/.kcov-reqs
want="${REQS[*]}"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  log "installing Python build and test requirements"
  .venv/bin/python -m pip install -q --upgrade "${REQS[@]}"
  printf '%s' "$want" > "$stamp"
else
  log "Python requirements present"
fi

# Reinstall only when a source of the package changed since the last install:
# a reinstall replaces libkcovrt.so under any test run that has it loaded.
installed_stamp=.venv/.kcov-installed
SOURCES=(pybind build_plugin runtime cmake CMakeLists.txt pyproject.toml)
if [ -f "$installed_stamp" ] && [ -z "$(find "${SOURCES[@]}" -newer "$installed_stamp" \
      -not -path '*/__pycache__*' -not -name '*.pyc' -print -quit)" ]; then
  log "kcov is installed and no source changed since"
else
  log "building and installing kcov into .venv"
  touch "$installed_stamp.new"
  .venv/bin/python -m pip install -q --no-build-isolation --no-deps --force-reinstall .
  mv "$installed_stamp.new" "$installed_stamp"
fi
log "done: $(.venv/bin/python -c 'import kcov; print("kcov", kcov.__version__, "runtime in", kcov.get_lib_dir())')"
