// Kind "convergence": every solver over the NFE ladder against the 50-digit reference flow; the
// fitted order of each solver from its largest coordinate error (all defaults of KindDefaults).
#pragma once

#include "pflow/experiment/kind_base.hpp"

namespace pflow {

struct ConvergenceKind : KindDefaults {
  static constexpr const char* name = "convergence";
};

}  // namespace pflow
