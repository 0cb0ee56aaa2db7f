// libFuzzer harness for experiment configs (scripts/fuzz builds and runs it): bytes -> JSON ->
// parse_experiment, then what a run builds from an accepted config (the mp50 target, SDE and
// solvers, the time grid at the smallest NFE). InputError is the expected answer to bad input;
// any other exception, a crash, a sanitizer report, a leak or a hang is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <typeinfo>

#include <nlohmann/json.hpp>

#include "pflow/core/errors.hpp"
#include "pflow/experiment/config.hpp"
#include "pflow/sampler/registry.hpp"
#include "pflow/sampler/time_grid.hpp"
#include "pflow/sde/factory.hpp"
#include "pflow/target/data_source.hpp"

namespace {

void check(const nlohmann::json& j) {
  const pflow::ExperimentConfig c = pflow::parse_experiment(j);
  // What a run builds from an accepted config: its dimensions must agree with the validation's.
  const auto data = pflow::DataSource<pflow::mp50>::from_config(c.target, "target");
  const auto sde = pflow::make_sde<pflow::mp50>(c.sde, c.data_dim, "sde");
  if (data.dim() != c.data_dim || sde->state_dim() != c.state_dim) std::abort();
  for (const auto& s : c.solvers) pflow::make_solver<pflow::mp50>(s, "solvers");
  if (c.kind != "kernel" && !c.nfe.empty())
    pflow::make_time_grid<double>(*pflow::make_sde<double>(c.sde, c.data_dim, "sde"), c.grid,
                                  c.t_start, c.t_end, c.nfe.front());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, false);
  if (j.is_discarded()) return -1;  // not JSON: keep it out of the corpus
  try {
    check(j);
  } catch (const pflow::InputError&) {
    // The expected rejection of a bad config.
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_config: unexpected %s escaped: %s\n", typeid(e).name(), e.what());
    std::abort();
  }
  return 0;
}
