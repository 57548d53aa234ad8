// aot_run: load an aotbuild artifact without Python, run it on the cases aotbuild recorded, compare.
//
//   aot_run --pt2 PATH [--so PATH] --reference PATH [--atol A --rtol R] [--case NAME]... [--bench N]
//
// --pt2        the target's .pt2 (its alias or versioned file), run through AOTIModelPackageLoader
// --so         the target's bare .so, also run, through AOTIModelContainerRunnerCpu (CPU artifacts)
// --reference  the target's reference_io.pt: per case, flat input tensors and eager outputs (torch.save'd)
// --atol/--rtol  tolerances; by default the ones `aotbuild test` uses for each output's dtype
// --case       only the named cases (repeatable); default all
// --bench N    time loading, the first call and N more calls on the first case (one JSON line per artifact),
//              then check as usual
//
// Exit status: 0 every output within tolerance, 1 a mismatch (the report names case, artifact and output),
// 2 bad usage or an artifact or reference file that cannot be loaded.
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#include <torch/csrc/inductor/aoti_runner/model_container_runner_cpu.h>
#include <torch/serialize.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
const char* kFormat = "aotbuild-reference-io/1";

struct Options {
  std::string pt2, so, reference;
  std::optional<double> atol, rtol;
  std::vector<std::string> cases;
  int bench = -1;
};

struct Case {
  std::string name;
  std::vector<at::Tensor> inputs, outputs;
  std::vector<std::string> output_paths;
};

[[noreturn]] void usage(const std::string& problem) {
  std::cerr << "aot_run: " << problem << "\n"
            << "usage: aot_run --pt2 PATH [--so PATH] --reference PATH [--atol A --rtol R] [--case NAME]... "
               "[--bench N]\n";
  std::exit(2);
}

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (i + 1 >= argc) usage("missing value after " + arg);
    std::string value = argv[++i];
    try {
      if (arg == "--pt2") o.pt2 = value;
      else if (arg == "--so") o.so = value;
      else if (arg == "--reference") o.reference = value;
      else if (arg == "--atol") o.atol = std::stod(value);
      else if (arg == "--rtol") o.rtol = std::stod(value);
      else if (arg == "--case") o.cases.push_back(value);
      else if (arg == "--bench") o.bench = std::stoi(value);
      else usage("unknown option " + arg);
    } catch (const std::logic_error&) {
      usage("bad number for " + arg + ": " + value);
    }
  }
  if (o.pt2.empty() || o.reference.empty()) usage("--pt2 and --reference are required");
  if (o.atol.has_value() != o.rtol.has_value()) usage("give both --atol and --rtol, or neither");
  return o;
}

std::vector<at::Tensor> tensors(const c10::IValue& list) {
  std::vector<at::Tensor> out;
  for (const c10::IValue& item : list.toListRef()) out.push_back(item.toTensor());
  return out;
}

// reference_io.pt as written by aotbuild/actions/reference_io.py (torch.save of plain containers).
std::vector<Case> read_reference(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw std::runtime_error("cannot open " + path);
  std::vector<char> bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  c10::Dict<c10::IValue, c10::IValue> top = torch::pickle_load(bytes).toGenericDict();
  if (!top.contains("format") || top.at("format").toStringRef() != kFormat)
    throw std::runtime_error(path + " is not an " + std::string(kFormat) + " file");
  std::vector<Case> cases;
  for (const c10::IValue& item : top.at("cases").toListRef()) {
    auto d = item.toGenericDict();
    Case c{d.at("name").toStringRef(), tensors(d.at("inputs")), tensors(d.at("outputs")), {}};
    for (const c10::IValue& p : d.at("output_paths").toListRef()) c.output_paths.push_back(p.toStringRef());
    cases.push_back(std::move(c));
  }
  return cases;
}

// The defaults of `aotbuild test` (aotbuild/actions/verify.py): about 100 ulps of each type; integers exact.
std::pair<double, double> tolerance_for(at::ScalarType t, const Options& o) {
  if (o.atol) return {*o.atol, *o.rtol};
  switch (t) {
    case at::kDouble: return {1e-7, 1e-7};
    case at::kFloat: return {1e-4, 1e-4};
    case at::kBFloat16: return {2e-2, 2e-2};
    case at::kHalf: return {5e-3, 5e-3};
    default: return {0.0, 0.0};
  }
}

std::string shape_of(const at::Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}

// One line per output; returns whether all are within tolerance.
bool compare(const Case& c, const std::string& artifact, const std::vector<at::Tensor>& got, const Options& o) {
  if (got.size() != c.outputs.size()) {
    std::cout << "FAIL " << artifact << " case '" << c.name << "': " << got.size() << " outputs, expected "
              << c.outputs.size() << "\n";
    return false;
  }
  bool all_ok = true;
  for (size_t i = 0; i < got.size(); ++i) {
    const at::Tensor want = c.outputs[i];
    const at::Tensor have = got[i].cpu();
    std::string where = artifact + " case '" + c.name + "' output " + c.output_paths[i];
    if (have.sizes() != want.sizes() || have.scalar_type() != want.scalar_type()) {
      std::cout << "FAIL " << where << ": got " << have.scalar_type() << shape_of(have) << ", expected "
                << want.scalar_type() << shape_of(want) << "\n";
      all_ok = false;
      continue;
    }
    auto [atol, rtol] = tolerance_for(want.scalar_type(), o);
    at::Tensor w = want.to(at::kDouble), h = have.to(at::kDouble);
    at::Tensor diff = (w - h).abs();
    double max_abs = diff.numel() ? diff.max().item<double>() : 0.0;
    double max_rel = diff.numel() ? (diff / w.abs().clamp_min(1e-12)).max().item<double>() : 0.0;
    bool ok = at::allclose(h, w, rtol, atol, /*equal_nan=*/true);
    std::cout << (ok ? "ok   " : "FAIL ") << where << " " << shape_of(want) << " max_abs=" << max_abs
              << " max_rel=" << max_rel << " (atol " << atol << ", rtol " << rtol << ")\n";
    all_ok = all_ok && ok;
  }
  return all_ok;
}

// An artifact that refuses inputs it was built for (a shape outside its compiled range) is a mismatch too.
bool check(const Case& c, const std::string& artifact, const std::function<std::vector<at::Tensor>()>& run,
           const Options& o) {
  std::vector<at::Tensor> got;
  try {
    got = run();
  } catch (const std::exception& e) {
    std::string message = e.what();
    std::cout << "FAIL " << artifact << " case '" << c.name << "': the artifact refused the inputs: "
              << message.substr(0, message.find('\n')) << "\n";
    return false;
  }
  return compare(c, artifact, got, o);
}

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// Load time, first call, then `repeats` calls: median and p90, as one JSON line on stdout.
void bench(const std::string& artifact, const std::function<void()>& load,
           const std::function<std::vector<at::Tensor>()>& call, int repeats) {
  auto start = Clock::now();
  load();
  double load_ms = ms_since(start);
  start = Clock::now();
  call();
  double first_ms = ms_since(start);
  std::vector<double> samples;
  for (int i = 0; i < std::max(repeats, 1); ++i) {
    start = Clock::now();
    call();
    samples.push_back(ms_since(start));
  }
  std::sort(samples.begin(), samples.end());
  double median = samples[samples.size() / 2];
  if (samples.size() % 2 == 0) median = (samples[samples.size() / 2 - 1] + median) / 2;
  double p90 = samples[std::min(samples.size() - 1, static_cast<size_t>(0.9 * (samples.size() - 1) + 0.5))];
  std::printf("{\"bench\": \"%s\", \"load_ms\": %.3f, \"first_call_ms\": %.3f, \"median_ms\": %.4f, "
              "\"p90_ms\": %.4f, \"repeats\": %zu, \"threads\": %d}\n",
              artifact.c_str(), load_ms, first_ms, median, p90, samples.size(), at::get_num_threads());
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse_args(argc, argv);
  c10::InferenceMode inference;
  std::vector<Case> cases;
  try {
    cases = read_reference(o.reference);
  } catch (const std::exception& e) {
    std::cerr << "aot_run: cannot read reference " << o.reference << ": " << e.what() << "\n";
    return 2;
  }
  if (!o.cases.empty()) {
    std::erase_if(cases, [&](const Case& c) {
      return std::find(o.cases.begin(), o.cases.end(), c.name) == o.cases.end();
    });
    if (cases.empty()) usage("no case with the given --case names in " + o.reference);
  }

  std::unique_ptr<torch::inductor::AOTIModelPackageLoader> pt2;
  std::unique_ptr<torch::inductor::AOTIModelContainerRunnerCpu> so;
  try {
    if (o.bench >= 0) {
      bench("pt2", [&] { pt2 = std::make_unique<torch::inductor::AOTIModelPackageLoader>(o.pt2); },
            [&] { return pt2->run(cases[0].inputs); }, o.bench);
      if (!o.so.empty())
        bench("so", [&] { so = std::make_unique<torch::inductor::AOTIModelContainerRunnerCpu>(o.so, 1); },
              [&] { return so->run(cases[0].inputs); }, o.bench);
    } else {
      pt2 = std::make_unique<torch::inductor::AOTIModelPackageLoader>(o.pt2);
      if (!o.so.empty()) so = std::make_unique<torch::inductor::AOTIModelContainerRunnerCpu>(o.so, 1);
    }
  } catch (const std::exception& e) {
    std::cerr << "aot_run: cannot load the artifact: " << e.what() << "\n";
    return 2;
  }

  bool all_ok = true;
  for (const Case& c : cases) {
    std::cout << "case '" << c.name << "':";
    for (const at::Tensor& t : c.inputs) std::cout << " " << t.scalar_type() << shape_of(t);
    std::cout << "\n";
    all_ok = check(c, "pt2", [&] { return pt2->run(c.inputs); }, o) && all_ok;
    if (so) all_ok = check(c, "so", [&] { return so->run(c.inputs); }, o) && all_ok;
  }
  std::cout << (all_ok ? "PASS" : "MISMATCH") << ": " << cases.size() << " case(s), "
            << (so ? "pt2 and so" : "pt2") << "\n";
  return all_ok ? 0 : 1;
}
