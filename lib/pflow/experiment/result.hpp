// What an experiment produces, in memory: per solver and cell (solver x NFE or tolerance) the
// final states and errors, the fitted orders, the reference, and a kind's extra tables. The HDF5
// layout (README "Results") stores exactly these numbers.
#pragma once

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "pflow/experiment/cluster.hpp"
#include "pflow/experiment/config.hpp"
#include "pflow/sampler/convergence.hpp"

namespace pflow {

// A trajectory (kind "trajectory"): the grid, the solver's states and the reference states at
// every grid time, row-major [steps + 1, n, D].
struct Trajectory {
  std::vector<double> t, x, reference;
};

// A named dataset, row-major, as a kind without cells (kernel) produces them.
struct Table {
  std::string path;  // HDF5 dataset path
  std::vector<size_t> shape;
  std::vector<double> data;
};

struct CellResult {
  int nfe_target = 0;               // fixed-step solvers: the NFE budget
  double tolerance = std::nan("");  // adaptive solvers: the tolerance
  long nfe = 0;
  int steps = 0;
  double err_max = 0, err_rms = 0, wall_s = 0;
  double err_weak = std::nan("");  // kind "stochastic": max |moment - reference moment|
  // A learned or perturbed model: the errors against the analytic flow of the data (the total
  // error; err_max and err_rms are against the model's own flow, the discretisation error).
  double err_total_max = std::nan(""), err_total_rms = std::nan("");
  // Kind "sample": the sliced W2 distance of the samples' data coordinates to fresh data, and
  // their mean log-likelihood under p_0 (NaN where the data has no density).
  double sw2 = std::nan(""), mean_log_p0 = std::nan("");
  std::vector<double> log_density;  // kind "likelihood": log p_eps at each point [n]
  // With Hutchinson's estimator: log_density is the mean over the probes, this its standard
  // error [n] (empty with the exact divergence).
  std::vector<double> log_density_se;
  // Kind "inversion": the round trip decode(encode(x)) - x (largest coordinate error and RMS)
  // and the decoded states, row-major [n, D].
  double roundtrip_max = std::nan(""), roundtrip_rms = std::nan("");
  std::vector<double> x_decoded;
  // Kind "interpolation": the mixture component of each decoded path point (by the largest
  // log p_eps(x, k)), the path parameters u where the decoded path switches component, the
  // pairs (from, to) of each switch flattened, and the largest |u - u_ref| over the switches
  // (+inf when the components switch in another pattern than the reference's).
  std::vector<double> components, switches, switch_pairs;
  double switch_error = std::nan("");
  // Kind "guidance": per scale, in_class, spread, sw2 and the samples (row-major [S, n, d]).
  std::map<std::string, std::vector<double>> series;
  std::vector<double> x;  // final states, row-major [n, D]
  bool failed = false;
  std::string failure;
  Trajectory trajectory;  // kind "trajectory" only
};

struct SolverRun {
  std::string label, name, reference;
  int declared_order = 0;  // strong order for kind "stochastic"
  int declared_weak_order = 0;
  bool adaptive = false;
  std::vector<CellResult> cells;
  OrderFit fit;             // over err_max (err_rms, the mean-square strong error, when stochastic)
  OrderFit weak_fit;        // kind "stochastic": over err_weak
  OrderFit weak_exact_fit;  // kind "stochastic": over the error against exact moments of p_t_end
  OrderFit roundtrip_fit;   // kind "inversion": over roundtrip_max
  OrderFit switch_fit;      // kind "interpolation": over switch_error
  // A learned or perturbed model: the smallest NFE from which the discretisation error (err_max)
  // stays below the model error (how many steps the model deserves); 0 when the largest NFE is
  // not below it, and for adaptive solvers.
  long knee_nfe = 0;
};

struct ExperimentResult {
  ExperimentConfig config;
  int particles = 0;
  std::vector<double> init, reference;  // row-major [n, D]
  std::string reference_method;
  double reference_tolerance = 0;
  // A learned or perturbed model: the analytic flow of the data from the same initial states
  // (row-major [n, D]; empty for the analytic model), how it was made, and the model error (the
  // model's flow against it: largest coordinate error and RMS).
  std::vector<double> analytic_flow;
  std::string analytic_method;
  double model_error_max = std::nan(""), model_error_rms = std::nan("");
  // Kind "inversion" on Gaussian data: the exact flow map's own round trip in the run's precision
  // (largest coordinate error; NaN where there is no exact map).
  double exact_roundtrip_max = std::nan("");
  // Kind "interpolation": the path parameters u [n], the endpoints' latents (row-major [2, D]),
  // and the reference's components and switches (as in CellResult).
  std::vector<double> path_parameters, latents, reference_components, reference_switches,
      reference_switch_pairs;
  std::string model_file, model_sha256;  // the model file as read, and its SHA-256
  // Kind "sample" (kinds/sample.hpp): data_first holds R fresh data samples of n points
  // (row-major [R, n, d]; `reference` their sorted projections), data_second R more; sw2_floor the
  // RMS distance between the pairs and sw2_floor_spread its standard deviation, data_mean_log_p0
  // the fresh data's mean log-likelihood under p_0 (NaN without a density).
  std::vector<double> data_first, data_second;
  double sw2_floor = std::nan(""), sw2_floor_spread = std::nan(""), data_mean_log_p0 = std::nan("");
  std::vector<SolverRun> solvers;
  size_t cells_total = 0, cells_done = 0;  // cells_done < cells_total: the run was stopped
  // Who ran each work item (reference chunks, cells) and when, on rank 0's clock from
  // clock_origin (the run's start); the run's ranks and threads per rank (/provenance/schedule).
  std::vector<cluster::TraceEntry> schedule;
  double clock_origin = 0;
  int ranks = 1, threads = 1;
  std::vector<Table> tables;  // kinds without cells (kernel): their datasets
};

}  // namespace pflow
