// Solvers by command-line name: make_solver builds one from a name or a JSON object
// {"name": ..., parameters}, with every parameter validated (errors name the JSON path).
//
//   auto a = make_solver<double>(json("dpm-solver++-3m"));
//   auto b = make_solver<double>(json{{"name", "unipc"}, {"variant", "bh2"}, {"order", 2}});
//   auto c = make_solver<mp50>(json{{"name", "gddim"}, {"order", 0}, {"K", "R"}});
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pflow/sampler/solver.hpp"

namespace pflow {

struct SolverCatalogueEntry {
  std::string name;
  std::string parameters;  // with defaults
  std::string order;       // declared order (with its condition)
  std::string reference;
  std::string family;  // "exponential", "multistep", "matrix", "odeint", "stochastic"
};
const std::vector<SolverCatalogueEntry>& solver_catalogue();
std::vector<std::string> solver_names();

template <class Scalar>
std::unique_ptr<Solver<Scalar>> make_solver(const nlohmann::json& spec,
                                            const std::string& path = "solver");

extern template std::unique_ptr<Solver<double>> make_solver<double>(const nlohmann::json&,
                                                                    const std::string&);
extern template std::unique_ptr<Solver<mp50>> make_solver<mp50>(const nlohmann::json&,
                                                                const std::string&);

}  // namespace pflow
