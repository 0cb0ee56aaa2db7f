#include "pflow/sampler/registry_impl.hpp"

namespace pflow {

template const SolverTable<mp50>& solver_table<mp50>();
template std::unique_ptr<Solver<mp50>> make_solver<mp50>(const nlohmann::json&, const std::string&);

}  // namespace pflow
