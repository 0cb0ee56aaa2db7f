// libFuzzer harness for experiment configs (scripts/fuzz builds and runs it): bytes -> the
// bounded JSON parser -> parse_experiment, then what a run builds from an accepted config (the
// mp50 target, SDE and solvers, the time grid at the smallest NFE, the normalised config's text).
// InputError is the expected answer to bad input; any other exception, a crash, a sanitizer report,
// a leak or a hang is a bug.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <random>
#include <string>
#include <typeinfo>
#include <vector>

#include <nlohmann/json.hpp>

#include "pflow/core/errors.hpp"
#include "pflow/core/json_fields.hpp"
#include "pflow/experiment/config.hpp"
#include "pflow/sampler/registry.hpp"
#include "pflow/sampler/time_grid.hpp"
#include "pflow/sde/factory.hpp"
#include "pflow/target/data_source.hpp"

namespace {

void check(const nlohmann::json& j) {
  const pflow::ExperimentConfig c = pflow::parse_experiment(j);
  // What a run builds from an accepted config: its dimensions must agree with the validation's.
  // A generated Gaussian is built only when small: its spec is a few bytes whatever its size
  // (d = 3072 in 50 digits takes 600 MB and a Cholesky check of minutes), and the run's memory
  // check, not this harness, is what stands between it and the machine.
  const int generated = pflow::generated_target_dim(c.target, "target");
  if (generated != 0 && generated != c.data_dim) std::abort();
  const auto sde = pflow::make_sde<pflow::mp50>(c.sde, c.data_dim, "sde");
  if (sde->state_dim() != c.state_dim) std::abort();
  if (generated <= 16) {
    const auto data = pflow::DataSource<pflow::mp50>::from_config(c.target, "target");
    if (data.dim() != c.data_dim) std::abort();
  }
  for (const auto& s : c.solvers) pflow::make_solver<pflow::mp50>(s, "solvers");
  if (c.normalized.dump().empty()) std::abort();  // as the checkpoint and the result do
  if (c.kind != "kernel" && !c.nfe.empty())
    pflow::make_time_grid<double>(*pflow::make_sde<double>(c.sde, c.data_dim, "sde"), c.grid,
                                  c.t_start, c.t_end, c.nfe.front());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    // The CLI's path: the bounded parser, then validation, then what a run does with the
    // normalised config (it is serialised into the checkpoint and the result).
    const nlohmann::json j = pflow::parse_json_text(text, "config file", "(fuzz input)");
    if (j.is_discarded()) return -1;  // not JSON: keep it out of the corpus
    check(j);
  } catch (const pflow::InputError&) {
    // The expected rejection of a bad config.
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_config: unexpected %s escaped: %s\n", typeid(e).name(), e.what());
    std::abort();
  }
  return 0;
}

namespace {

// The end of the JSON value that starts at `p` (after blanks): a string, a bracketed value (its
// matching bracket) or a bare token. Returns `size` when it does not close.
std::size_t value_end(const std::uint8_t* data, std::size_t size, std::size_t p) {
  while (p < size && (data[p] == ' ' || data[p] == '\n' || data[p] == '\t' || data[p] == '\r')) ++p;
  if (p >= size) return size;
  int depth = 0;
  bool in_string = false, escaped = false;
  for (std::size_t i = p; i < size; ++i) {
    const char c = static_cast<char>(data[i]);
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"') {
        in_string = false;
        if (depth == 0) return i + 1;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      ++depth;
    } else if (c == ']' || c == '}') {
      if (depth == 0) return i;  // a bare token ended by its container
      if (--depth == 0) return i + 1;
    } else if (depth == 0 && (c == ',' || c == ' ' || c == '\n')) {
      return i;
    }
  }
  return size;
}

}  // namespace

// The structure-aware half of the mutator: one time in four it wraps a value of the input (the
// value after a random ':' or '[') in k levels of arrays or single-key objects, k log-uniform up
// to what max_size allows (~100,000 levels at scripts/fuzz's -max_len). Byte-level mutations
// never build such nesting: a config whose description nested 100,000 levels deep crashed the
// serialiser, and the fuzzer with short inputs never found it.
extern "C" std::size_t LLVMFuzzerMutate(std::uint8_t* data, std::size_t size, std::size_t max_size);
extern "C" std::size_t LLVMFuzzerCustomMutator(std::uint8_t* data, std::size_t size,
                                               std::size_t max_size, unsigned int seed) {
  std::minstd_rand rng(seed);
  if (size == 0 || size >= max_size || rng() % 4 != 0)
    return LLVMFuzzerMutate(data, size, max_size);
  std::vector<std::size_t> starts;
  for (std::size_t i = 0; i < size; ++i)
    if (data[i] == ':' || data[i] == '[') starts.push_back(i + 1);
  if (starts.empty()) return LLVMFuzzerMutate(data, size, max_size);
  const std::size_t begin = starts[rng() % starts.size()];
  const std::size_t end = value_end(data, size, begin);
  const bool object = rng() % 2;
  const std::string open = object ? "{\"a\":" : "[", close = object ? "}" : "]";
  const std::size_t room = (max_size - size) / (open.size() + close.size());
  if (room == 0) return LLVMFuzzerMutate(data, size, max_size);
  // log-uniform in [1, room]
  const double u = std::uniform_real_distribution<double>(0, std::log(double(room) + 1))(rng);
  const std::size_t k = std::min<std::size_t>(room, std::max<std::size_t>(1, std::exp(u)));
  std::string out(reinterpret_cast<const char*>(data), begin);
  for (std::size_t i = 0; i < k; ++i) out += open;
  out.append(reinterpret_cast<const char*>(data) + begin, end - begin);
  for (std::size_t i = 0; i < k; ++i) out += close;
  out.append(reinterpret_cast<const char*>(data) + end, size - end);
  std::copy(out.begin(), out.end(), data);
  return out.size();
}
