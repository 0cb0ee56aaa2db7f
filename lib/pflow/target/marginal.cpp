// The Gaussian-mixture marginal for the library's three number types, compiled once here
// (target/marginal.hpp declares these instantiations extern).
#include "pflow/target/marginal.hpp"

namespace pflow {

template class Marginal<double>;
template class Marginal<mp50>;
template class Marginal<f128>;

}  // namespace pflow
