// Explicit instantiations for double, mp50 and f128 of the Gaussian-mixture marginal (its score
// and densities) and of the flows built on it: the reference flow (Bulirsch-Stoer on the PF-ODE)
// and the exact flow map of Gaussian data. Their headers declare them extern, so every other
// translation unit links these instead of compiling them again (one unit of the pflow library;
// not in pflow_config, whose sources carry the fuzzer's coverage instrumentation).
#include "pflow/flow/exact_flow.hpp"
#include "pflow/flow/pf_ode.hpp"
#include "pflow/target/marginal.hpp"

namespace pflow {

#define PFLOW_INSTANTIATE_MIXTURE(S)      \
  template class Marginal<S>;             \
  PFLOW_REFERENCE_FLOW_INSTANTIATION(, S) \
  PFLOW_EXACT_FLOW_INSTANTIATION(, S)

PFLOW_INSTANTIATE_MIXTURE(double)
PFLOW_INSTANTIATE_MIXTURE(mp50)
PFLOW_INSTANTIATE_MIXTURE(f128)

}  // namespace pflow
