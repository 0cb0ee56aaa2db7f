// pflow, all of it: the umbrella header of the installed library (find_package(pflow), target
// pflow::pflow). Including the headers of the parts used compiles faster.
//
//   #include <pflow/pflow.hpp>
//   auto sde = pflow::make_sde<double>(json{{"type", "vp-linear"}}, 2);
//   auto data = pflow::make_target<double>(json{{"type", "gaussian"}, ...});
//   pflow::AnalyticDenoiser<double> model(*sde, data);
//   auto solver = pflow::make_solver<double>(json("dpm-solver++-2m"));
//   auto r = pflow::solve(*solver, problem, grid, x);
#pragma once

#include "pflow/core/errors.hpp"
#include "pflow/core/scalar.hpp"
#include "pflow/experiment/config.hpp"
#include "pflow/experiment/run.hpp"
#include "pflow/experiment/table.hpp"
#include "pflow/flow/exact_flow.hpp"
#include "pflow/flow/pf_ode.hpp"
#include "pflow/model/denoisers.hpp"
#include "pflow/model/mlp.hpp"
#include "pflow/model/mlp_file.hpp"
#include "pflow/sampler/convergence.hpp"
#include "pflow/sampler/denoiser.hpp"
#include "pflow/sampler/registry.hpp"
#include "pflow/sampler/solver.hpp"
#include "pflow/sampler/time_grid.hpp"
#include "pflow/sde/factory.hpp"
#include "pflow/target/gaussian_mixture.hpp"
#include "pflow/target/marginal.hpp"
#include "pflow/verify/verify.hpp"
#include "pflow/version.hpp"
