// Explicit instantiations of the SDE classes for double, f128 and mp50: compiled once here, so
// other translation units only instantiate what they use beyond them.
#include "pflow/sde/blurring.hpp"
#include "pflow/sde/cld.hpp"
#include "pflow/sde/linear_sde.hpp"
#include "pflow/sde/scalar_sdes.hpp"

namespace pflow {

#define PFLOW_INSTANTIATE(S)     \
  template class BlockMatrix<S>; \
  template class VpLinear<S>;    \
  template class VpCosine<S>;    \
  template class SubVp<S>;       \
  template class Ve<S>;          \
  template class Edm<S>;         \
  template class Cld<S>;         \
  template class Blurring<S>;    \
  template class GenericLinear<S>;

PFLOW_INSTANTIATE(double)
PFLOW_INSTANTIATE(f128)
PFLOW_INSTANTIATE(mp50)

}  // namespace pflow
