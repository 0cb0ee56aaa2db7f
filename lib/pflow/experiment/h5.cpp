#include "pflow/experiment/h5.hpp"

#include <H5Cpp.h>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "pflow/core/errors.hpp"

namespace pflow::h5 {

struct File::Impl {
  H5::H5File file;
};

namespace {

// HDF5 failures while reading a file the user named: the file's content is the input at fault.
// While building a result in memory (the core driver touches no disk): an internal error, since
// the config was validated; the disk is reached only in save(), whose failures are I/O errors.
enum class Access { read, build };

template <class F>
auto guarded(Access access, const std::string& file, const std::string& object, F&& f)
    -> decltype(f()) {
  try {
    return f();
  } catch (const H5::Exception& e) {
    const std::string detail = "HDF5 error: " + std::string(e.getDetailMsg());
    if (access == Access::build)
      throw std::runtime_error("building the result " + file + " in memory failed at " + object +
                               ": " + detail);
    throw InputError(file, object, detail);
  }
}

H5::StrType utf8_string() {
  H5::StrType type(H5::PredType::C_S1, H5T_VARIABLE);
  type.setCset(H5T_CSET_UTF8);
  return type;
}

// The object (group or dataset) at a path, for attributes.
template <class F>
void with_object(H5::H5File& file, const std::string& object, F&& f) {
  if (object == "/" || object.empty()) {
    H5::Group root = file.openGroup("/");
    f(static_cast<H5::H5Object&>(root));
    return;
  }
  // The C++ API's type query (it throws H5::Exception when the object is missing, where the C
  // call's status was ignored); the same call in HDF5 1.10 and 1.12+.
  const H5O_type_t type = file.childObjType(object);
  if (type == H5O_TYPE_DATASET) {
    H5::DataSet ds = file.openDataSet(object);
    f(static_cast<H5::H5Object&>(ds));
  } else {
    H5::Group g = file.openGroup(object);
    f(static_cast<H5::H5Object&>(g));
  }
}

}  // namespace

File::File(std::string path, Impl* impl) : path_(std::move(path)), impl_(impl) {}
File::File(File&& other) noexcept : path_(std::move(other.path_)), impl_(other.impl_) {
  other.impl_ = nullptr;
}
File& File::operator=(File&& other) noexcept {
  std::swap(path_, other.path_);
  std::swap(impl_, other.impl_);
  return *this;
}
File::~File() {
  delete impl_;
}

File File::create(const std::string& path, std::size_t expected_bytes) {
  H5::Exception::dontPrint();
  // The core driver without a backing store: the file is built in memory and reaches the disk
  // only in save(), one checked write. A full disk or a read-only location then fails in plain
  // file I/O that pflow checks, never inside HDF5's close (whose failures its C++ destructors
  // can only print).
  return guarded(Access::build, path, "(create)", [&] {
    H5::FileAccPropList access;
    access.setCore(std::max<std::size_t>(1 << 20, expected_bytes + expected_bytes / 8), false);
    return File(path,
                new Impl{H5::H5File(path, H5F_ACC_TRUNC, H5::FileCreatPropList::DEFAULT, access)});
  });
}

namespace {

// The superblock's status flags ("file consistency flags" in the HDF5 file format specification):
// where they sit, by superblock version, when the file starts with its superblock (no user
// block). An open file has its write-access bit set there; a closed file, and the image
// H5Fget_file_image copies out, have them cleared.
struct StatusFlags {
  std::size_t offset, size;
};
StatusFlags status_flags(const char* image, std::size_t size) {
  static const char signature[8] = {'\x89', 'H', 'D', 'F', '\r', '\n', '\x1a', '\n'};
  if (size < 24 || std::memcmp(image, signature, 8) != 0)
    throw H5::FileIException("File::save", "the in-memory file does not start with a superblock");
  const int version = image[8];
  if (version == 0 || version == 1) return {20, 4};  // after the versions, sizes and B-tree K's
  if (version == 2 || version == 3) return {11, 1};  // after the version and the two sizes
  throw H5::FileIException("File::save", "unknown superblock version " + std::to_string(version));
}

}  // namespace

void File::save() {
  // Writes the core driver's own buffer, with no image copy (a result of N = 1e6 2-D states is
  // 48 MB): after a global flush its first `size` bytes are the file, and with the status flags
  // cleared they are byte for byte what H5Fget_file_image would copy out.
  const char* image = nullptr;
  std::size_t size = 0;
  StatusFlags flags{};
  guarded(Access::build, path_, "(file image)", [&] {
    impl_->file.flush(H5F_SCOPE_GLOBAL);
    const hid_t id = impl_->file.getId();
    const ssize_t bytes = H5Fget_file_image(id, nullptr, 0);
    if (bytes < 0) throw H5::FileIException("H5Fget_file_image", "cannot size the file image");
    void* handle = nullptr;
    if (H5Fget_vfd_handle(id, H5P_DEFAULT, &handle) < 0 || handle == nullptr)
      throw H5::FileIException("H5Fget_vfd_handle", "cannot reach the in-memory file");
    image = *static_cast<const char* const*>(handle);  // the core driver hands out &mem
    size = static_cast<std::size_t>(bytes);
    if (image == nullptr) throw H5::FileIException("H5Fget_vfd_handle", "the file has no data");
    flags = status_flags(image, size);
  });
  std::FILE* out = std::fopen(path_.c_str(), "wb");
  if (!out) throw IoError(path_, std::string("cannot be created: ") + std::strerror(errno));
  const char cleared[4] = {0, 0, 0, 0};
  const std::size_t rest = flags.offset + flags.size;
  const bool written = std::fwrite(image, 1, flags.offset, out) == flags.offset &&
                       std::fwrite(cleared, 1, flags.size, out) == flags.size &&
                       std::fwrite(image + rest, 1, size - rest, out) == size - rest &&
                       std::fflush(out) == 0 && fsync(fileno(out)) == 0;
  const int error = errno;
  const bool closed = std::fclose(out) == 0;
  if (!written || !closed) {
    std::remove(path_.c_str());
    throw IoError(path_, "writing " + std::to_string(size) +
                             " bytes failed: " + std::strerror(written ? errno : error));
  }
}

File File::open(const std::string& path, const std::string& role) {
  H5::Exception::dontPrint();
  std::ifstream probe(path);
  if (!probe) throw InputError(role, path, "does not exist or cannot be read");
  bool hdf5 = false;
  try {
    hdf5 = H5::H5File::isHdf5(path.c_str());
  } catch (const H5::Exception&) {
  }
  if (!hdf5) throw InputError(role, path, "is not an HDF5 file");
  return guarded(Access::read, path, "(open)",
                 [&] { return File(path, new Impl{H5::H5File(path, H5F_ACC_RDONLY)}); });
}

void File::group(const std::string& path) {
  guarded(Access::build, path_, path, [&] { impl_->file.createGroup(path); });
}

void File::dataset(const std::string& path, const std::vector<size_t>& shape,
                   const std::vector<double>& data) {
  guarded(Access::build, path_, path, [&] {
    std::vector<hsize_t> dims(shape.begin(), shape.end());
    H5::DataSpace space(static_cast<int>(dims.size()), dims.data());
    H5::DataSet ds = impl_->file.createDataSet(path, H5::PredType::IEEE_F64LE, space);
    ds.write(data.data(), H5::PredType::NATIVE_DOUBLE);
  });
}

void File::dataset_slabs(const std::string& path, const std::vector<size_t>& shape,
                         const std::vector<const double*>& slabs) {
  guarded(Access::build, path_, path, [&] {
    if (shape.empty() || slabs.size() != shape[0])
      throw H5::DataSetIException("File::dataset_slabs", "one slab per index of the first axis");
    std::vector<hsize_t> dims(shape.begin(), shape.end());
    H5::DataSpace space(static_cast<int>(dims.size()), dims.data());
    H5::DataSet ds = impl_->file.createDataSet(path, H5::PredType::IEEE_F64LE, space);
    std::vector<hsize_t> count = dims, start(dims.size(), 0);
    count[0] = 1;
    const H5::DataSpace slab_space(static_cast<int>(count.size()), count.data());
    std::vector<double> missing;
    for (size_t i = 0; i < slabs.size(); ++i) {
      const double* values = slabs[i];
      if (values == nullptr) {
        missing.resize(static_cast<size_t>(slab_space.getSimpleExtentNpoints()), std::nan(""));
        values = missing.data();
      }
      start[0] = i;
      space.selectHyperslab(H5S_SELECT_SET, count.data(), start.data());
      ds.write(values, H5::PredType::NATIVE_DOUBLE, slab_space, space);
    }
  });
}

void File::dataset(const std::string& path, const std::vector<long>& data) {
  guarded(Access::build, path_, path, [&] {
    hsize_t dims[1] = {data.size()};
    H5::DataSpace space(1, dims);
    H5::DataSet ds = impl_->file.createDataSet(path, H5::PredType::STD_I64LE, space);
    ds.write(data.data(), H5::PredType::NATIVE_LONG);
  });
}

void File::attribute(const std::string& object, const std::string& name, const std::string& value) {
  guarded(Access::build, path_, object + "@" + name, [&] {
    with_object(impl_->file, object, [&](H5::H5Object& o) {
      const H5::StrType type = utf8_string();
      H5::Attribute a = o.createAttribute(name, type, H5::DataSpace(H5S_SCALAR));
      a.write(type, value);
    });
  });
}

void File::attribute(const std::string& object, const std::string& name, double value) {
  guarded(Access::build, path_, object + "@" + name, [&] {
    with_object(impl_->file, object, [&](H5::H5Object& o) {
      H5::Attribute a =
          o.createAttribute(name, H5::PredType::IEEE_F64LE, H5::DataSpace(H5S_SCALAR));
      a.write(H5::PredType::NATIVE_DOUBLE, &value);
    });
  });
}

void File::attribute(const std::string& object, const std::string& name,
                     const std::vector<double>& value) {
  guarded(Access::build, path_, object + "@" + name, [&] {
    with_object(impl_->file, object, [&](H5::H5Object& o) {
      hsize_t dims[1] = {value.size()};
      H5::Attribute a = o.createAttribute(name, H5::PredType::IEEE_F64LE, H5::DataSpace(1, dims));
      if (!value.empty()) a.write(H5::PredType::NATIVE_DOUBLE, value.data());
    });
  });
}

bool File::exists(const std::string& path) const {
  return guarded(Access::read, path_, path,
                 [&] { return H5Lexists(impl_->file.getId(), path.c_str(), H5P_DEFAULT) > 0; });
}

bool File::has_attribute(const std::string& object, const std::string& name) const {
  if (object != "/" && !exists(object)) return false;
  return guarded(Access::read, path_, object + "@" + name, [&] {
    bool found = false;
    with_object(impl_->file, object, [&](H5::H5Object& o) { found = o.attrExists(name); });
    return found;
  });
}

std::vector<std::string> File::children(const std::string& group) const {
  return guarded(Access::read, path_, group, [&] {
    H5::Group g = impl_->file.openGroup(group);
    std::vector<std::string> names;
    for (hsize_t i = 0; i < g.getNumObjs(); ++i) names.push_back(g.getObjnameByIdx(i));
    return names;
  });
}

std::vector<double> File::read(const std::string& path, std::vector<size_t>* shape) const {
  return guarded(Access::read, path_, path, [&] {
    H5::DataSet ds = impl_->file.openDataSet(path);
    H5::DataSpace space = ds.getSpace();
    const int rank = space.getSimpleExtentNdims();
    std::vector<hsize_t> dims(rank);
    space.getSimpleExtentDims(dims.data());
    size_t total = 1;
    for (hsize_t d : dims) total *= d;
    std::vector<double> data(total);
    if (total) ds.read(data.data(), H5::PredType::NATIVE_DOUBLE);
    if (shape) shape->assign(dims.begin(), dims.end());
    return data;
  });
}

std::string File::read_string(const std::string& object, const std::string& name) const {
  return guarded(Access::read, path_, object + "@" + name, [&] {
    std::string out;
    with_object(impl_->file, object, [&](H5::H5Object& o) {
      H5::Attribute a = o.openAttribute(name);
      a.read(a.getStrType(), out);
    });
    return out;
  });
}

double File::read_double(const std::string& object, const std::string& name) const {
  return read_doubles(object, name).at(0);
}

std::vector<double> File::read_doubles(const std::string& object, const std::string& name) const {
  return guarded(Access::read, path_, object + "@" + name, [&] {
    std::vector<double> out;
    with_object(impl_->file, object, [&](H5::H5Object& o) {
      H5::Attribute a = o.openAttribute(name);
      const hssize_t n = a.getSpace().getSimpleExtentNpoints();
      out.resize(static_cast<size_t>(n));
      if (n) a.read(H5::PredType::NATIVE_DOUBLE, out.data());
    });
    return out;
  });
}

}  // namespace pflow::h5
