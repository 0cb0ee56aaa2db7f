#include "pflow/sampler/registry_impl.hpp"

namespace pflow {

template const SolverTable<f128>& solver_table<f128>();
template std::unique_ptr<Solver<f128>> make_solver<f128>(const nlohmann::json&, const std::string&);

}  // namespace pflow
