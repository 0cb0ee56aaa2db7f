// The table of experiment kinds (kind_base.hpp): the one place that maps a config's "kind" to
// its class. Adding a kind is its file in kinds/ and one entry here.
#pragma once

#include <tuple>

#include "pflow/experiment/kinds/convergence.hpp"
#include "pflow/experiment/kinds/elbo.hpp"
#include "pflow/experiment/kinds/guidance.hpp"
#include "pflow/experiment/kinds/interpolation.hpp"
#include "pflow/experiment/kinds/inversion.hpp"
#include "pflow/experiment/kinds/kernel.hpp"
#include "pflow/experiment/kinds/likelihood.hpp"
#include "pflow/experiment/kinds/sample.hpp"
#include "pflow/experiment/kinds/stochastic.hpp"
#include "pflow/experiment/kinds/trajectory.hpp"
#include "pflow/experiment/kinds/work_precision.hpp"

namespace pflow {

using ExperimentKinds = std::tuple<ConvergenceKind, KernelKind, WorkPrecisionKind, TrajectoryKind,
                                   StochasticKind, SampleKind, LikelihoodKind, InversionKind,
                                   InterpolationKind, GuidanceKind, ElboKind>;

// Calls f(kind) with the kind named `name` (an InputError if there is none).
template <class F>
void with_kind(const std::string& name, F&& f) {
  std::apply(
      [&](auto... kinds) {
        bool found = false;
        auto visit = [&](const auto& kind) {
          if (found || name != kind.name) return;
          found = true;
          f(kind);
        };
        (visit(kinds), ...);
        require(found, "kind", name, "is not a kind of experiment");
      },
      ExperimentKinds{});
}

// Calls f(kind) for every kind, in the table's order.
template <class F>
void for_each_kind(F&& f) {
  std::apply([&](auto... kinds) { (f(kinds), ...); }, ExperimentKinds{});
}

// The names of the kinds, in the table's order.
inline std::vector<std::string> kind_names() {
  return std::apply([](auto... kinds) { return std::vector<std::string>{kinds.name...}; },
                    ExperimentKinds{});
}

}  // namespace pflow
