// The registry's templates (instantiated in registry.cpp for double and registry_mp50.cpp for
// mp50): the table of records, one line per family file, and make_solver.
#pragma once

#include "pflow/sampler/deis.hpp"
#include "pflow/sampler/exponential.hpp"
#include "pflow/sampler/flow_matching.hpp"
#include "pflow/sampler/matrix.hpp"
#include "pflow/sampler/odeint_solvers.hpp"
#include "pflow/sampler/registry.hpp"
#include "pflow/sampler/stochastic.hpp"
#include "pflow/sampler/unipc.hpp"

namespace pflow {

template <class Scalar>
const SolverTable<Scalar>& solver_table() {
  static const SolverTable<Scalar> table = [] {
    SolverTable<Scalar> t;
    add_exponential_solvers(t);    // exponential.hpp
    add_deis_solvers(t);           // deis.hpp
    add_unipc_solvers(t);          // unipc.hpp
    add_matrix_solvers(t);         // matrix.hpp
    add_odeint_solvers(t);         // odeint_solvers.hpp
    add_stochastic_solvers(t);     // stochastic.hpp
    add_flow_matching_solvers(t);  // flow_matching.hpp
    return t;
  }();
  return table;
}

template <class Scalar>
std::unique_ptr<Solver<Scalar>> make_solver(const nlohmann::json& spec, const std::string& path) {
  const nlohmann::json object =
      spec.is_string() ? nlohmann::json{{"name", spec.get<std::string>()}} : spec;
  const SolverRecord<Scalar>& record = solver_table<Scalar>()[detail::solver_index(spec, path)];
  const SolverParams params = read_solver_params(record, object, path);
  const SolverTraits traits = record.traits(params);
  SolverInfo info;
  info.name = record.name;
  info.label = detail::solver_label(spec, record.name);
  info.family = record.family;
  info.reference = record.reference;
  info.order = traits.order;
  info.evals_per_step = traits.evals_per_step;
  info.stochastic = traits.stochastic;
  info.weak_order = traits.weak_order;
  info.adaptive = traits.adaptive;
  info.scalar_sde_only = traits.scalar_sde_only;
  info.uniform_grid = traits.uniform_grid;
  return record.make(params, std::move(info));
}

}  // namespace pflow
