// A small layer over HDF5's C++ API (H5Cpp) for the result files: groups, row-major double and
// integer datasets, and attributes (UTF-8 variable-length strings, numbers, vectors). Every HDF5
// failure becomes a pflow error naming the file and the object.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace pflow::h5 {

class File {
 public:
  // Creates a file for writing (in memory until save()), or opens an existing one read-only
  // (`role` names it in errors: "result file", "denoiser.path").
  // expected_bytes: roughly the size the file will have, so that its in-memory buffer grows in
  // one step (growing it 1 MiB at a time leaves the freed smaller buffers behind in the heap).
  static File create(const std::string& path, std::size_t expected_bytes = 0);
  static File open(const std::string& path, const std::string& role = "result file");
  File(File&&) noexcept;
  File& operator=(File&&) noexcept;
  ~File();

  void group(const std::string& path);
  // A dataset of the given shape from row-major data (numpy order).
  void dataset(const std::string& path, const std::vector<size_t>& shape,
               const std::vector<double>& data);
  // The same from one contiguous row-major slab per index of the first axis (shape[0] of them,
  // each of the product of the other extents), with no concatenated copy; nullptr is a slab of
  // NaN.
  void dataset_slabs(const std::string& path, const std::vector<size_t>& shape,
                     const std::vector<const double*>& slabs);
  void dataset(const std::string& path, const std::vector<long>& data);
  void attribute(const std::string& object, const std::string& name, const std::string& value);
  void attribute(const std::string& object, const std::string& name, double value);
  void attribute(const std::string& object, const std::string& name,
                 const std::vector<double>& value);
  // Writes a created file to its path in one checked write (flushed and fsynced); a failure
  // (disk full, read-only location) is an IoError and leaves no file at the path.
  void save();

  bool exists(const std::string& path) const;
  bool has_attribute(const std::string& object, const std::string& name) const;
  std::vector<std::string> children(const std::string& group) const;
  std::vector<double> read(const std::string& path, std::vector<size_t>* shape = nullptr) const;
  std::string read_string(const std::string& object, const std::string& name) const;
  double read_double(const std::string& object, const std::string& name) const;
  std::vector<double> read_doubles(const std::string& object, const std::string& name) const;
  const std::string& path() const { return path_; }

 private:
  struct Impl;
  File(std::string path, Impl* impl);
  std::string path_;
  Impl* impl_ = nullptr;
};

}  // namespace pflow::h5
